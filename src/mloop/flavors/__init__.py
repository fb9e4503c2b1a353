"""Save and load each kind of model; every loaded model predicts original labels.

A flavor writes a model into an empty folder and returns JSON-ready metadata (always with
``task`` and ``classes``); the registry hashes and stores the files and later hands the
folder and metadata back to ``load``.
"""

from mloop.flavors._artifact import load_artifact
from mloop.flavors._base import ArrayModel, Flavor, Model, Predictions, Task
from mloop.flavors._catalog import FLAVORS, flavor_for, get_flavor
from mloop.flavors._mlflow import MlflowModelDir, import_mlflow
from mloop.flavors._pyfunc import task_from_target

__all__ = [
    "FLAVORS",
    "ArrayModel",
    "Flavor",
    "MlflowModelDir",
    "Model",
    "Predictions",
    "Task",
    "flavor_for",
    "get_flavor",
    "import_mlflow",
    "load_artifact",
    "task_from_target",
]
