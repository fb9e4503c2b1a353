"""The model registry: versions, aliases, lineage, and loading."""

from mloop.registry._model_version import ModelVersion, RegisteredModel
from mloop.registry._predictor import Predictor
from mloop.registry._refs import ModelRef, parse_ref, validate_name
from mloop.registry._registry import Registry, current_actor

__all__ = [
    "ModelRef",
    "ModelVersion",
    "Predictor",
    "RegisteredModel",
    "Registry",
    "current_actor",
    "parse_ref",
    "validate_name",
]
