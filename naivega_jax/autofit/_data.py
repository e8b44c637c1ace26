"""The data ``fit`` trains on: checks, encoding, the validation split, and how many epochs a generation trains."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import check_labels, train_val_split

VALIDATION_SPLIT = 0.1
#: training examples each candidate sees per generation by default. Upstream AutoFlux trains 400 batches of 1024
#: (409,600 examples) per generation; this is scaled down so that a generation fits a small CPU machine.
SAMPLES_PER_GENERATION = 18_000


def default_epochs(n_train: int) -> int:
    """Epochs per generation (1 to 10) so that a candidate trains on about ``SAMPLES_PER_GENERATION`` examples.

    Weights survive mutation, so a model that stays in the population accumulates these epochs generation after
    generation.

    Example:
        >>> from naivega_jax.autofit import default_epochs
        >>> default_epochs(3600), default_epochs(4500), default_epochs(54000), default_epochs(500)
        (5, 4, 1, 10)
    """
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
        raise ValueError(f"default_epochs: n_train must be a positive int, got {n_train!r}")
    return max(1, min(10, round(SAMPLES_PER_GENERATION / int(n_train))))


def prepare_data(x: Any, y: Any, validation_split: float):
    """Checks and shapes the data: ``(x_train, y_train, x_val, y_val, in_shape, classes)``.

    Flat vectors ``(n, F)`` become sequences ``(n, F, 1)``; labels are encoded ``0..K-1`` (``classes`` maps back).
    """
    x = np.asarray(x)
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"fit: x must be a numeric array, got dtype {x.dtype}")
    if x.ndim < 2 or x.ndim > 4:
        raise ValueError(
            f"fit: x must have shape (n, F), (n, L, C) or (n, H, W, C), got shape {x.shape} (ndim {x.ndim})"
        )
    if x.shape[0] == 0:
        raise ValueError("fit: x is empty (0 examples)")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"fit: x holds {int(bad.sum())} NaN or Inf values (the first, {x[first]}, at index {first}); "
            "clean the data first"
        )
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"fit: y must be a vector of {x.shape[0]} labels (one per row of x), got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        i = int(np.argmax(np.mod(y, 1) != 0))
        raise ValueError(f"fit: y must hold integer class labels, got {y[i].item()} at index {i}")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"fit: y must hold at least 2 classes, got {classes.tolist()}")
    codes = check_labels(np.searchsorted(classes, y), num_classes=int(classes.size))
    if x.ndim == 2:
        x = x[..., None]
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split!r}")
    x_tr, y_tr, x_val, y_val = train_val_split(x, codes, fraction=validation_split)
    if x_tr.shape[0] == 0:
        raise ValueError(f"fit: validation_split={validation_split} leaves no training examples of {x.shape[0]}")
    missing = sorted(set(range(classes.size)) - set(np.unique(y_val).tolist()))
    if missing:
        raise ValueError(
            f"fit: the validation split (the last {y_val.shape[0]} examples) has no example of classes "
            f"{[classes[m].item() for m in missing]}; shuffle the data or raise validation_split"
        )
    return x_tr, y_tr, x_val, y_val, tuple(int(s) for s in x.shape[1:]), classes


def _prepare_test(test_data: Any, classes: np.ndarray, in_shape: tuple[int, ...]):
    """The test data shaped like the training data, labels encoded like it; None stays None."""
    if test_data is None:
        return None
    if not (isinstance(test_data, (tuple, list)) and len(test_data) == 2):
        raise TypeError(f"fit: test_data must be None or a pair (x_test, y_test), got {type(test_data).__name__}")
    x, y = np.asarray(test_data[0], np.float32), np.asarray(test_data[1])
    if x.ndim == 2 and len(in_shape) == 2 and in_shape[1] == 1:
        x = x[..., None]
    if tuple(x.shape[1:]) != in_shape or y.shape != (x.shape[0],):
        raise ValueError(
            f"fit: test_data must be x of shape (n, {', '.join(map(str, in_shape))}) like the training data and n "
            f"labels; got x {x.shape}, y {y.shape}"
        )
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        raise ValueError(f"fit: test_data has labels {unknown.tolist()} that the training data does not have")
    return x, np.searchsorted(classes, y)
