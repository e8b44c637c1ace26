"""One rule for making values JSON: checkpoints, lineage files and mutation events all write what it gives."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON: numbers (numpy's too) as Python numbers, non-finite floats as strings ("nan",
    "inf"), mappings with string keys, sequences and arrays as lists, anything else as its ``repr``.

    Example:
        >>> import numpy as np
        >>> from naivega_jax._json import json_safe
        >>> json_safe({"a": np.int64(3), 1: (np.float32(0.5), float("nan")), "b": np.arange(2)})
        {'a': 3, '1': [0.5, 'nan'], 'b': [0, 1]}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "__array__") and not callable(value):
        return json_safe(np.asarray(value).tolist())
    return repr(value)
