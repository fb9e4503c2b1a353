"""Monitoring: drift from binned counts, realized and estimated performance.

``drift(reference, current)`` compares a window with a reference ``Profile`` or
DataFrame and returns a ``DriftReport`` (``to_frame``, ``to_dict``, ``to_html``).
``WindowCounts`` reduces windows to mergeable counts; detectors follow River's
``update(...) -> self`` / ``drift_detected`` protocol.
"""

from mloop.monitor._api import drift
from mloop.monitor._cbpe import estimate_performance
from mloop.monitor._counting import WindowCounts
from mloop.monitor._detectors import BinnedDriftDetector, Detector, PageHinkley
from mloop.monitor._domain import domain_classifier_auc
from mloop.monitor._drift import ColumnDrift, DriftReport, MultivariateDrift, drift_from_counts
from mloop.monitor._metrics import classification_metrics, metrics_by_slice, regression_metrics
from mloop.monitor._reference import ColumnReference, Reference, as_reference

__all__ = [
    "BinnedDriftDetector",
    "ColumnDrift",
    "ColumnReference",
    "Detector",
    "DriftReport",
    "MultivariateDrift",
    "PageHinkley",
    "Reference",
    "WindowCounts",
    "as_reference",
    "classification_metrics",
    "domain_classifier_auc",
    "drift",
    "drift_from_counts",
    "estimate_performance",
    "metrics_by_slice",
    "regression_metrics",
]
