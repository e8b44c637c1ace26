"""The data ``fit`` trains on: checks, encoding, the validation split, a fingerprint, and how many epochs a
generation trains."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from ..data import check_labels, train_val_split
from ._spaces import check_task

VALIDATION_SPLIT = 0.1
#: training examples each candidate sees per generation by default. Upstream AutoFlux trains 400 batches of 1024
#: (409,600 examples) per generation; this is scaled down so that a generation fits a small CPU machine.
SAMPLES_PER_GENERATION = 18_000


def training_size(n: int, validation_split: float = VALIDATION_SPLIT) -> int:
    """How many of ``n`` examples ``fit`` trains on: all but the last ``ceil(validation_split * n)``, the
    validation part ``ng.data.train_val_split`` cuts off.

    Example:
        >>> from naivega_jax.autofit import training_size
        >>> training_size(4000), training_size(25, 0.1)
        (3600, 22)
    """
    return int(n) - math.ceil(validation_split * int(n))


def _check_n_train(n_train: Any, where: str) -> None:
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
        raise ValueError(f"{where}: n_train must be a positive int, got {n_train!r}")


def default_epochs(n_train: int) -> int:
    """Epochs per generation (1 to 10) so that a candidate trains on about ``SAMPLES_PER_GENERATION`` examples.

    Weights survive mutation, so a model that stays in the population accumulates these epochs generation after
    generation.

    Example:
        >>> from naivega_jax.autofit import default_epochs
        >>> default_epochs(3600), default_epochs(4500), default_epochs(54000), default_epochs(500)
        (5, 4, 1, 10)
    """
    _check_n_train(n_train, "default_epochs")
    return max(1, min(10, round(SAMPLES_PER_GENERATION / int(n_train))))


def default_partitions(n_train: int) -> int:
    """Parts a generation's training data is cut into by default: 1 (every generation trains whole epochs) unless
    an epoch is at least 1.5 times ``SAMPLES_PER_GENERATION``; then about ``n_train / SAMPLES_PER_GENERATION``, and
    each generation trains one epoch of the next part (``ng.TrainThenFitness(partitions=...)``), as upstream trains a
    fixed number of batches per generation instead of whole epochs.

    Example:
        >>> from naivega_jax.autofit import default_partitions
        >>> default_partitions(3600), default_partitions(26999), default_partitions(27000), default_partitions(54000)
        (1, 1, 2, 3)
    """
    _check_n_train(n_train, "default_partitions")
    return max(1, round(int(n_train) / SAMPLES_PER_GENERATION))


def _check_x(x: Any, what: str) -> np.ndarray:
    """``x`` as float32 if it is a numeric array of 1 to 3 feature axes, with examples and no NaN or Inf."""
    x = np.asarray(x)
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"fit: {what} must be a numeric array, got dtype {x.dtype}")
    if x.ndim < 2 or x.ndim > 4:
        raise ValueError(
            f"fit: {what} must have shape (n, F), (n, L, C) or (n, H, W, C), got shape {x.shape} (ndim {x.ndim})"
        )
    if x.shape[0] == 0:
        raise ValueError(f"fit: {what} is empty (0 examples)")
    return _finite(x.astype(np.float32), what)


def _finite(a: np.ndarray, what: str) -> np.ndarray:
    """``a``, or a one-line ``ValueError`` counting its NaN and Inf values and naming the first."""
    if not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"fit: {what} holds {int(bad.sum())} NaN or Inf values (the first, {a[first]}, at index {first}); "
            "clean the data first"
        )
    return a


def _check_targets(y: Any, n: int, what: str) -> np.ndarray:
    """Regression targets as float32 ``(n, T)`` (a vector ``(n,)`` becomes a column): numbers, finite."""
    y = np.asarray(y)
    if y.dtype == object or y.dtype.kind not in "iuf":
        raise TypeError(f"fit: {what} must hold numbers (the regression targets), got dtype {y.dtype}")
    if y.ndim not in (1, 2) or y.shape[0] != n or (y.ndim == 2 and y.shape[1] < 1):
        raise ValueError(
            f"fit: {what} must have shape ({n},) or ({n}, T), one row of targets per example; got {y.shape}"
        )
    return _finite(y.astype(np.float32), what).reshape(n, -1)


def _split(x: np.ndarray, y: np.ndarray, validation_split: float):
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split!r}")
    x_tr, y_tr, x_val, y_val = train_val_split(x, y, fraction=validation_split)
    if x_tr.shape[0] == 0:
        raise ValueError(f"fit: validation_split={validation_split} leaves no training examples of {x.shape[0]}")
    return x_tr, y_tr, x_val, y_val


def prepare_data(x: Any, y: Any, validation_split: float, task: str = "classification"):
    """Checks and shapes the data: ``(x_train, y_train, x_val, y_val, in_shape, classes)``.

    ``x`` keeps its shape: vectors ``(n, F)`` stay vectors (``default_space`` searches MLPs for them).
    Classification: labels are encoded ``0..K-1`` (``classes`` maps back). Regression: ``y`` of shape ``(n,)`` or
    ``(n, T)`` becomes float32 ``(n, T)`` (a vector a column, ``T = 1``: the model has one output per column) and
    ``classes`` is None.
    """
    task = check_task(task, "fit")
    x = _check_x(x, "x")
    if task == "regression":
        y = _check_targets(y, x.shape[0], "y")
        if np.all(y == y[0]):
            row = y[0].item() if y.shape[1] == 1 else y[0].tolist()
            raise ValueError(f"fit: y is constant (every target is {row}); regression needs targets that vary")
        x_tr, y_tr, x_val, y_val = _split(x, y, validation_split)
        return x_tr, y_tr, x_val, y_val, tuple(int(s) for s in x.shape[1:]), None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"fit: y must be a vector of {x.shape[0]} labels (one per row of x), got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        i = int(np.argmax(np.mod(y, 1) != 0))
        raise ValueError(
            f"fit: y must hold integer class labels, got {y[i].item()} at index {i}; for real-valued targets use "
            "task='regression'"
        )
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"fit: y must hold at least 2 classes, got {classes.tolist()}")
    codes = check_labels(np.searchsorted(classes, y), num_classes=int(classes.size))
    x_tr, y_tr, x_val, y_val = _split(x, codes, validation_split)
    missing = sorted(set(range(classes.size)) - set(np.unique(y_val).tolist()))
    if missing:
        raise ValueError(
            f"fit: the validation split (the last {y_val.shape[0]} examples) has no example of classes "
            f"{[classes[m].item() for m in missing]}; shuffle the data or raise validation_split"
        )
    return x_tr, y_tr, x_val, y_val, tuple(int(s) for s in x.shape[1:]), classes


def _prepare_test(test_data: Any, classes: np.ndarray | None, in_shape: tuple[int, ...], targets: int | None = None):
    """The test data shaped like the training data; labels encoded like it (classification), or targets as float32
    ``(n, targets)`` (regression: ``classes`` is None); None stays None."""
    if test_data is None:
        return None
    if not (isinstance(test_data, (tuple, list)) and len(test_data) == 2):
        raise TypeError(f"fit: test_data must be None or a pair (x_test, y_test), got {type(test_data).__name__}")
    x, y = _check_x(test_data[0], "test_data x"), np.asarray(test_data[1])
    if x.ndim == 2 and len(in_shape) == 2 and in_shape[1] == 1:
        x = x[..., None]
    if classes is None:
        if tuple(x.shape[1:]) != in_shape:
            raise ValueError(
                f"fit: test_data x must have shape (n, {', '.join(map(str, in_shape))}) like the training data, "
                f"got {x.shape}"
            )
        y = _check_targets(y, x.shape[0], "test_data y")
        if y.shape[1] != targets:
            raise ValueError(f"fit: test_data y must have {targets} target columns like y, got shape {y.shape}")
        return x, y
    if tuple(x.shape[1:]) != in_shape or y.shape != (x.shape[0],):
        raise ValueError(
            f"fit: test_data must be x of shape (n, {', '.join(map(str, in_shape))}) like the training data and n "
            f"labels; got x {x.shape}, y {y.shape}"
        )
    return x, encode_known_labels(y, classes, where="fit: test_data y")


def _shown(values: np.ndarray, limit: int = 10) -> str:
    items = values[:limit].tolist()
    return str(items) if values.size <= limit else f"{str(items)[:-1]}, ...] ({values.size} distinct)"


def encode_known_labels(y: Any, classes: Any, *, where: str = "y") -> np.ndarray:
    """The codes ``0..K-1`` of labels ``y`` among the known ``classes``; refuses labels that are not among them.

    ``classes`` are the sorted distinct labels of the training data (``fit`` records them in run.json), so data
    evaluated later is encoded as the model was trained. A label the model never saw has no code: unlike
    ``np.searchsorted``, which would give it a neighbour's code or ``K``, this raises.

    Args:
        y: labels, one per example (integral floats such as ``3.0`` match the class ``3``).
        classes: the known labels, distinct and sorted.
        where: what the labels are called in messages (the argument or data they come from).

    Returns:
        int32 codes with ``classes[codes] == y``.

    Raises:
        ValueError: ``y`` is not a vector, ``classes`` are not distinct and sorted, the two cannot be compared, or
            ``y`` holds labels not among ``classes`` (the message names them and how many examples carry them).

    Example:
        >>> from naivega_jax.autofit import encode_known_labels
        >>> encode_known_labels([30, 10, 20], [10, 20, 30]).tolist()
        [2, 0, 1]
        >>> try:
        ...     encode_known_labels([10, 40, 40], [10, 20])
        ... except ValueError as e:
        ...     print(e)
        y holds labels [40] that the training data does not have (its 2 classes: [10, 20]); 2 of 3 examples carry them
    """
    y, classes = np.asarray(y), np.asarray(classes)
    if y.ndim != 1:
        raise ValueError(f"{where} must be a vector of labels, one per example, got shape {y.shape}")
    if classes.ndim != 1 or classes.size == 0 or (classes.size > 1 and not np.all(classes[1:] > classes[:-1])):
        raise ValueError(
            f"{where}: the known classes must be distinct and sorted (np.unique of the training labels), got "
            f"{_shown(classes)}"
        )
    if (y.dtype.kind in "biuf") != (classes.dtype.kind in "biuf"):
        raise ValueError(
            f"{where} holds labels of dtype {y.dtype}, which cannot match classes of dtype {classes.dtype}"
        )
    codes = np.minimum(np.searchsorted(classes, y), classes.size - 1)
    known = classes[codes] == y
    if not known.all():
        raise ValueError(
            f"{where} holds labels {_shown(np.unique(y[~known]))} that the training data does not have (its "
            f"{classes.size} classes: {_shown(classes)}); {int((~known).sum())} of {y.size} examples carry them"
        )
    return codes.astype(np.int32)


def data_fingerprint(*arrays: Any) -> str:
    """A hex SHA-256 of the arrays' dtypes, shapes and values, in order: equal only for the same data.

    Each array contributes its dtype (little-endian), its shape and its bytes in C order, so the fingerprint does
    not depend on how the array is stored (C or Fortran order, a strided view, byte order) but changes when any
    value, shape or dtype does, or when the arrays come in another order.

    Args:
        *arrays: numeric (or string) arrays; object arrays are refused, their bytes being addresses.

    Returns:
        64 hex digits.

    Example:
        >>> import numpy as np
        >>> from naivega_jax.autofit import data_fingerprint
        >>> x = np.arange(6.0).reshape(2, 3)
        >>> data_fingerprint(x) == data_fingerprint(np.asfortranarray(x)) != data_fingerprint(x.reshape(3, 2))
        True
    """
    digest = hashlib.sha256(b"naivega_jax data v1\n")
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"data_fingerprint: arrays[{i}] has dtype {a.dtype}; expected numeric or string arrays")
        if a.dtype.byteorder not in "<|":
            a = a.astype(a.dtype.newbyteorder("<"))
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str} {a.shape} {a.nbytes}\n".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()
