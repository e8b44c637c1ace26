"""Data sets that need no internet: ``ng.datasets.load(name, path=None) -> (x_train, y_train, x_test, y_test)``.

Nothing here downloads. Every loader returns numpy arrays: ``x`` float32, channels last (images (n, H, W, C),
sequences (n, L, C)), ``y`` int32 class indices 0..k-1.

==================  ======================================================================================
name                where the data comes from, what ``x`` holds
==================  ======================================================================================
``digits``          scikit-learn's ``load_digits`` (1797 images 8x8x1, scaled to [0, 1]); fixed split: the last
                    360 (20%, rounded up) are the test set. ``path`` is not used.
``mnist1d``         the MNIST-1D generator (built in, offline): 4000 + 1000 sequences (40, 1), standardised as
                    published (mean 0, std 1 over the whole set). Cached as ``mnist1d-v1.npz`` in ``path`` or the
                    user cache (``$NAIVEGA_JAX_CACHE``, else ``$XDG_CACHE_HOME/naivega_jax``, else
                    ``~/.cache/naivega_jax``).
``fashion-mnist``   IDX files (60000 + 10000 images 28x28x1, scaled to [0, 1]) in ``path``, by default
                    ``/usr/share/datasets/fashion-mnist`` from the Debian package ``dataset-fashion-mnist``.
``mnist``           IDX files ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
                    ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]`` (the ``.idx3-ubyte``
                    spelling too) in the directory ``path``; scaled to [0, 1].
``cifar10``         the python pickle batches ``data_batch_1..5`` and ``test_batch`` in ``path``, in
                    ``path/cifar-10-batches-py/``, or in ``cifar-10-python.tar.gz``; images 32x32x3 in [0, 1].
``FILE.npz``        a user file with the arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``: uint8 ``x`` is
                    divided by 255, other ``x`` is only cast to float32; ``y`` must be class indices. A 3-D ``x``
                    (n, H, W) holds one-channel images and becomes (n, H, W, 1), as MNIST's; sequences (n, L, C)
                    need the string array ``layout="sequences"`` in the file (``np.savez(..., layout="sequences")``),
                    which keeps (n, L, C) and turns (n, L) into (n, L, 1). ``x`` of 2 or 4 axes keeps its shape.
                    Also ``load("npz", path=FILE)``.
==================  ======================================================================================

Example:
    >>> import naivega_jax as ng
    >>> x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")
    >>> x_tr.shape, x_te.shape, y_tr.dtype, float(x_tr.max())
    ((1437, 8, 8, 1), (360, 8, 8, 1), dtype('int32'), 1.0)
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_atomic
from ._formats import NPZ_KEYS, NPZ_LAYOUT_KEY, load_cifar10, load_idx_dir, load_npz, read_idx
from ._mnist1d import make_dataset as _make_mnist1d
from ._split import check_labels

_Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

__all__ = ["DATASETS", "FASHION_MNIST_DIR", "cache_dir", "load", "read_idx"]

DATASETS = ("digits", "mnist1d", "fashion-mnist", "mnist", "cifar10")
"""The names ``load`` accepts (besides a path ending in ``.npz``)."""

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` puts its IDX files."""

_ALIASES = {
    "digits": "digits",
    "mnist1d": "mnist1d",
    "mnist-1d": "mnist1d",
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "mnist": "mnist",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "npz": "npz",
}

_HOW_TO_GET = {
    "fashion-mnist": (
        "Install the Debian package: `sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist` "
        f"(files in {FASHION_MNIST_DIR}), or pass path=DIR holding the four *-ubyte.gz IDX files."
    ),
    "mnist": (
        "MNIST ships in no package this library may download at run time: pass path=DIR holding "
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz (plain or gzip)."
    ),
    "cifar10": (
        "Pass path=DIR holding the python version of CIFAR-10 (cifar-10-python.tar.gz, or its extracted "
        "cifar-10-batches-py/ with data_batch_1..5 and test_batch)."
    ),
}

_MNIST1D_FILE = "mnist1d-v1.npz"


def cache_dir() -> Path:
    """The user cache directory: ``$NAIVEGA_JAX_CACHE``, else ``$XDG_CACHE_HOME/naivega_jax``, else ``~/.cache/...``.

    Example:
        >>> import pathlib, naivega_jax as ng
        >>> isinstance(ng.datasets.cache_dir(), pathlib.Path)
        True
    """
    env = os.environ.get("NAIVEGA_JAX_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "naivega_jax"


def _scale_uint8_images(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    return (x.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def _finish(x_tr: np.ndarray, y_tr: Any, x_te: np.ndarray, y_te: Any, name: str, num_classes: int | None) -> _Split:
    try:
        y_tr = check_labels(y_tr, num_classes)
        y_te = check_labels(y_te, num_classes)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: {x.shape[0]} {split} examples but {y.shape[0]} {split} labels")
    return np.ascontiguousarray(x_tr, np.float32), y_tr, np.ascontiguousarray(x_te, np.float32), y_te


def _digits(path: Any) -> _Split:
    if path is not None:
        raise ValueError(f"load('digits') takes no path (the data ships with scikit-learn), got path={path!r}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target
    n_test = math.ceil(0.2 * len(y))
    return _finish(x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], "digits", 10)


def _mnist1d_from_cache(file: Path) -> _Split | None:
    try:
        with np.load(file, allow_pickle=False) as f:
            x_tr, y_tr, x_te, y_te = (f[k] for k in NPZ_KEYS)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    arrays = (x_tr, y_tr, x_te, y_te)
    shapes = tuple(a.shape for a in arrays)
    if shapes != ((4000, 40, 1), (4000,), (1000, 40, 1), (1000,)):
        return None
    return arrays


def _mnist1d(path: Any) -> _Split:
    directory = Path(path).expanduser() if path is not None else cache_dir()
    file = directory / _MNIST1D_FILE
    if file.is_file():
        cached = _mnist1d_from_cache(file)
        if cached is not None:
            return _finish(*cached, "mnist1d", 10)
    d = _make_mnist1d()
    arrays = (
        d["x"].astype(np.float32)[..., None],
        d["y"].astype(np.int32),
        d["x_test"].astype(np.float32)[..., None],
        d["y_test"].astype(np.int32),
    )
    payload: dict[str, Any] = {**dict(zip(NPZ_KEYS, arrays)), NPZ_LAYOUT_KEY: "sequences"}
    try:
        write_atomic(file, lambda f: np.savez(f, **payload))
    except OSError as e:
        warnings.warn(
            f"mnist1d: could not cache the data in {directory} ({e}); it will be generated again next time",
            stacklevel=3,
        )
    return _finish(*arrays, "mnist1d", 10)


def _idx(name: str, path: Any) -> _Split:
    how = _HOW_TO_GET[name]
    if path is None:
        if name == "mnist":
            raise ValueError(f"load('mnist') needs path=DIR. {how}")
        path = FASHION_MNIST_DIR
        if not path.is_dir():
            raise FileNotFoundError(f"fashion-mnist: {path} does not exist. {how}")
    x_tr, y_tr, x_te, y_te = load_idx_dir(Path(path).expanduser(), how, name)
    if x_tr.dtype != np.uint8 or x_te.dtype != np.uint8:
        raise ValueError(f"{name} in {path}: expected uint8 images in the IDX files, got {x_tr.dtype} and {x_te.dtype}")
    return _finish(_scale_uint8_images(x_tr), y_tr, _scale_uint8_images(x_te), y_te, name, 10)


def _cifar(path: Any) -> _Split:
    how = _HOW_TO_GET["cifar10"]
    if path is None:
        raise ValueError(f"load('cifar10') needs path=DIR. {how}")
    x_tr, y_tr, x_te, y_te = load_cifar10(Path(path).expanduser(), how)
    return _finish(_scale_uint8_images(x_tr), y_tr, _scale_uint8_images(x_te), y_te, "cifar10", 10)


#: each npz layout: the ndim of ``x`` that lacks the channel axis (added on load), and the shapes it accepts
_NPZ_LAYOUTS = {"images": (3, "(n, H, W) or (n, H, W, C)"), "sequences": (2, "(n, L) or (n, L, C)")}


def _npz_layout(layout: np.ndarray | None, x: np.ndarray, file: Path) -> np.ndarray:
    """``x`` with a channel axis where the layout says one is missing: 3-D images unless the file says sequences."""
    if layout is None:
        return x[..., None] if x.ndim == 3 else x
    name = layout.item() if layout.shape == () else None
    if name not in _NPZ_LAYOUTS:
        shown = repr(name) if layout.shape == () else repr(layout)
        raise ValueError(f"{file}: {NPZ_LAYOUT_KEY} must be 'images' or 'sequences', got {shown}")
    ndim, shapes = _NPZ_LAYOUTS[name]
    if x.ndim not in (ndim, ndim + 1):
        raise ValueError(f"{file}: {NPZ_LAYOUT_KEY}={name!r} needs x_train of shape {shapes}, got {x.shape}")
    return x[..., None] if x.ndim == ndim else x


def _npz(path: Any) -> _Split:
    if path is None:
        raise ValueError("load('npz') needs path=FILE.npz with arrays " + ", ".join(NPZ_KEYS))
    file = Path(path).expanduser()
    (x_tr, y_tr, x_te, y_te), layout = load_npz(file)
    for key, x in (("x_train", x_tr), ("x_test", x_te)):
        if x.ndim < 2 or x.dtype.kind not in "uif":
            raise ValueError(f"{file}: {key} must be a numeric array (n, ...), got {x.dtype} {x.shape}")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(f"{file}: x_train and x_test differ in example shape: {x_tr.shape} vs {x_te.shape}")
    x_tr, x_te = _npz_layout(layout, x_tr, file), _npz_layout(layout, x_te, file)
    if x_tr.dtype == np.uint8:
        x_tr, x_te = x_tr / np.float32(255.0), x_te / np.float32(255.0)
    return _finish(x_tr, y_tr, x_te, y_te, str(file), None)


def load(
    name: str, path: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load a data set by name (see the module docstring for what each holds and where it comes from).

    Args:
        name: ``"digits"``, ``"mnist1d"``, ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``, ``"npz"`` or a path
            ending in ``.npz``.
        path: a directory (IDX, CIFAR-10), a file (npz), the cache directory (mnist1d), or None for the default.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: float32 ``x`` channels last, int32 ``y``. An npz file's 3-D ``x``
        is read as one-channel images (n, H, W) -> (n, H, W, 1), like the IDX files of MNIST, unless the file
        holds ``layout="sequences"``: then (n, L, C) stays and (n, L) becomes (n, L, 1).

    Raises:
        ValueError: an unknown name, a missing required path, or malformed files.
        FileNotFoundError: the files are not there; the message says how to get them.

    Example:
        >>> import naivega_jax as ng
        >>> x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")
        >>> sorted(set(y_tr.tolist())) == list(range(10))
        True
        >>> import pathlib, tempfile, numpy as np
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "mine.npz"
        >>> x, y = np.zeros((4, 12, 12), np.uint8), np.array([0, 1, 0, 1])
        >>> np.savez(f, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
        >>> ng.datasets.load(str(f))[0].shape
        (4, 12, 12, 1)
        >>> np.savez(f, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2], layout="sequences")
        >>> ng.datasets.load(str(f))[0].shape
        (4, 12, 12)
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise TypeError(f"datasets.load: name must be a string, got {type(name).__name__}: {name!r}")
    if name.lower().endswith(".npz"):
        if path is not None:
            raise ValueError(f"datasets.load: give the npz file as name or as path, not both ({name!r}, {path!r})")
        return _npz(name)
    key = _ALIASES.get(name.strip().lower())
    if key is None:
        raise ValueError(f"datasets.load: unknown data set {name!r}; expected one of {', '.join(DATASETS)} or FILE.npz")
    if key == "digits":
        return _digits(path)
    if key == "mnist1d":
        return _mnist1d(path)
    if key in ("fashion-mnist", "mnist"):
        return _idx(key, path)
    if key == "cifar10":
        return _cifar(path)
    return _npz(path)
