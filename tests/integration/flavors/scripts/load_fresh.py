"""Run as a script: load every saved model folder in MANIFEST and check its predictions.

Usage: python load_fresh.py MANIFEST HELPERS_DIR
mlflow is made unimportable first: loading must not need it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.modules["mlflow"] = None  # type: ignore[assignment]

manifest, helpers = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, helpers)

import numpy as np  # noqa: E402
from flavor_models import mixed_frame, numeric_frame  # noqa: E402

from mloop.flavors import get_flavor  # noqa: E402

frames = {"mixed": mixed_frame()[0], "numeric": numeric_frame()[0]}
for entry in json.loads(manifest.read_text()):
    model = get_flavor(entry["flavor"]).load(Path(entry["folder"]), entry["meta"])
    got = model.predict(frames[entry["data"]])
    if "values" in entry:
        np.testing.assert_allclose(got.values, entry["values"], rtol=1e-5)  # type: ignore[arg-type]
    else:
        assert got.labels is not None
        assert got.labels.tolist() == entry["labels"], entry["name"]
        np.testing.assert_allclose(got.probabilities, entry["probabilities"], rtol=1e-5)  # type: ignore[arg-type]
        assert list(model.classes) == entry["meta"]["classes"], entry["name"]
    print("ok", entry["name"])
