"""Data contracts: the input schema inferred from training data, validation, reference profiles.

A :class:`Schema` says which columns a model takes and checks incoming records against
it; a :class:`Profile` summarises the reference data (binned features, predictions,
calibration) so monitoring can compare live windows without the raw rows.
"""

from mloop.contracts._calibration import Calibration
from mloop.contracts._column import Column
from mloop.contracts._export import ExportFormat, export_contract, schema_from_document
from mloop.contracts._infer import infer_schema
from mloop.contracts._profile import FeatureProfile, Profile, bin_counts, build_profile
from mloop.contracts._schema import Schema, invalid_input
from mloop.contracts._text import parse_text_columns
from mloop.contracts._violation import Violation

__all__ = [
    "Calibration",
    "Column",
    "ExportFormat",
    "FeatureProfile",
    "Profile",
    "Schema",
    "Violation",
    "bin_counts",
    "build_profile",
    "export_contract",
    "infer_schema",
    "invalid_input",
    "parse_text_columns",
    "schema_from_document",
]
