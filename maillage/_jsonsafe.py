"""JSON-safe values: NaN and infinities become null, numpy scalars Python numbers, frames
lists of records. Shared by the API and the command line's ``--format json``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def clean(value: Any) -> Any:
    """JSON-safe value: NaN/inf → None, numpy scalars → Python, arrays and lists cleaned
    item by item (list columns of a frame hold them)."""
    if value is None:
        return None
    if isinstance(value, (np.ndarray, list, tuple)):
        return [clean(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as a list of JSON-safe dicts."""
    cols = list(df.columns)
    return [{c: clean(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False)]


def deep_clean(obj: Any) -> Any:
    """Recursively make a result of the analysis layer JSON-safe (frames become records)."""
    if isinstance(obj, pd.DataFrame):
        return records(obj)
    if isinstance(obj, dict):
        return {str(k): deep_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [deep_clean(v) for v in obj]
    return clean(obj)
