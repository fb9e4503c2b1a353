"""Model optimization with proof: convert to ONNX, check the answers, register or refuse.

:func:`optimize_version` converts a registered scikit-learn, XGBoost or LightGBM version
(optionally quantized), compares its predictions with the original's on reference rows
(and on rows with missing values, judged on their own) and its speed for one row and a
batch of 64, then registers it as a new version with that proof, or returns the numbers
that made it refuse.
"""

from mloop.optimize._compare import Agreement, Tolerance, compare_predictions, judge
from mloop.optimize._convert import CONVERTIBLE_FLAVORS, convert_to_onnx, quantize_onnx
from mloop.optimize._optimize import OptimizeResult, optimize_version
from mloop.optimize._reference import rows_from_profile, with_missing_probes
from mloop.optimize._speed import BATCH, Speed, measure_speed, serve_predict

__all__ = [
    "BATCH",
    "CONVERTIBLE_FLAVORS",
    "Agreement",
    "OptimizeResult",
    "Speed",
    "Tolerance",
    "compare_predictions",
    "convert_to_onnx",
    "judge",
    "measure_speed",
    "optimize_version",
    "quantize_onnx",
    "rows_from_profile",
    "serve_predict",
    "with_missing_probes",
]
