"""Validation splits and label checks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def train_val_split(x: Any, y: Any, fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off the LAST ``ceil(fraction * n)`` examples as the validation set, in order, without shuffling.

    As NaiveGAflux's ``TrainSplitAccuracy``: the split is a pure function of the data, so every candidate and
    every resumed run validates on the same examples. Shuffle beforehand if the data is sorted by class.

    Args:
        x: features, examples along the first axis.
        y: labels (or targets), as many as ``x`` has examples.
        fraction: the validation share, in (0, 1); at least one example stays for training.

    Returns:
        ``(x_train, y_train, x_val, y_val)``, views of the inputs.

    Example:
        >>> import numpy as np, naivega_jax as ng
        >>> x_tr, y_tr, x_val, y_val = ng.data.train_val_split(np.zeros((25, 3)), np.arange(25), 0.1)
        >>> x_tr.shape, y_val.tolist()
        ((22, 3), [22, 23, 24])
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"train_val_split: x and y need a leading example axis, got shapes {x.shape} and {y.shape}")
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"train_val_split: x has {n} examples but y has {y.shape[0]}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ValueError(f"train_val_split: fraction must be a number in (0, 1), got {fraction!r}")
    n_val = math.ceil(fraction * n)
    if n_val >= n:
        raise ValueError(
            f"train_val_split: fraction={fraction} of {n} examples leaves no training data ({n_val} for validation)"
        )
    return x[: n - n_val], y[: n - n_val], x[n - n_val :], y[n - n_val :]


def check_labels(y: Any, num_classes: int | None = None) -> np.ndarray:
    """Class labels as a 1-D int32 array, checked to lie in ``0 .. num_classes - 1``.

    Args:
        y: integer class indices, one per example (integral floats such as 3.0 are accepted).
        num_classes: the number of classes; by default ``max(y) + 1``.

    Returns:
        ``y`` as int32.

    Raises:
        ValueError: ``y`` is not 1-D, holds non-integers or negatives, or a label is ``>= num_classes``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.data.check_labels([0, 2, 1], num_classes=3).dtype
        dtype('int32')
        >>> try:
        ...     ng.data.check_labels([0, 3], num_classes=3)
        ... except ValueError as e:
        ...     print(e)
        check_labels: labels must lie in 0..2 (num_classes=3), got 3
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"check_labels: labels must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"check_labels: labels must be integer class indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = arr[~np.isfinite(arr) | (arr != np.round(arr))]
        if bad.size:
            raise ValueError(f"check_labels: labels must be whole numbers, got {bad[:5].tolist()}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"check_labels: labels must be >= 0, got {arr.min().item()}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"check_labels: num_classes must be a positive int, got {num_classes!r}")
        if arr.size and arr.max() >= num_classes:
            raise ValueError(
                f"check_labels: labels must lie in 0..{num_classes - 1} (num_classes={num_classes}), "
                f"got {arr.max().item():g}"
            )
    if arr.size and arr.max() > np.iinfo(np.int32).max:
        raise ValueError(f"check_labels: label {arr.max().item()} does not fit int32")
    return arr.astype(np.int32)


def encode_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary labels to class indices 0..k-1 in sorted order of the distinct labels (as NaiveGAflux).

    Args:
        y: labels of any sortable kind (ints, strings), one per example.

    Returns:
        ``(codes, classes)``: int32 codes with ``classes[codes] == y``, and the sorted distinct labels.

    Example:
        >>> import naivega_jax as ng
        >>> codes, classes = ng.data.encode_labels(["cat", "dog", "cat", "ant"])
        >>> codes.tolist(), classes.tolist()
        ([1, 2, 1, 0], ['ant', 'cat', 'dog'])
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"encode_labels: labels must be 1-D, one per example, got shape {arr.shape}")
    classes, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int32).reshape(-1), classes
