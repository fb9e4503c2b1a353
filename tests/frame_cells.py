"""How the parity tests compare cells and send them: shared by unit and integration tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def cell_identity(value: Any) -> str:
    """A cell's type and value as text; ``None``, ``NaN``, ``pd.NA`` and ``NaT`` all differ."""
    if value is None:
        return "None"
    if value is pd.NA:
        return "NA"
    if value is pd.NaT:
        return "NaT"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{type(value).__name__}:{value!r}"


def json_cell(value: Any) -> Any:
    """A cell as a JSON client sends it: missing as null, dates as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
