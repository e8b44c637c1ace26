"""Readers for the files data sets come in: IDX (MNIST, Fashion-MNIST), CIFAR-10 python pickles, npz."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: a damaged gzip file ({e})") from None
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, into a numpy array.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        The array with the file's shape and element type (native byte order).

    Example:
        >>> import gzip, struct, tempfile, pathlib, numpy as np
        >>> from naivega_jax.data.datasets import read_idx
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
        >>> _ = f.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([7, 0, 9])))
        >>> read_idx(f).tolist()
        [7, 0, 9]
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (expected the magic bytes 00 00 <type> <ndim>, got {raw[:4]!r})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes, {ndim} dimensions announced)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data of shape {shape} and type {dtype} needs {expected} bytes, the file has "
            f"{len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


_IDX_NAMES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find_idx(directory: Path, what: str, how_to_get: str) -> Path:
    for stem in _IDX_NAMES[what]:
        for suffix in (".gz", ""):
            candidate = directory / (stem + suffix)
            if candidate.is_file():
                return candidate
    names = " or ".join(f"{s}[.gz]" for s in _IDX_NAMES[what])
    raise FileNotFoundError(f"{directory}: no {names} ({what}). {how_to_get}")


def load_idx_dir(directory: Path, how_to_get: str, name: str) -> tuple[np.ndarray, ...]:
    """The four MNIST-style IDX files of a directory as (x_train, y_train, x_test, y_test), x as (n, H, W, 1)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{name}: {directory} is not a directory. {how_to_get}")
    arrays = {what: read_idx(_find_idx(directory, what, how_to_get)) for what in _IDX_NAMES}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{name} in {directory}: expected {split} images (n, H, W) and n labels, got shapes {x.shape} and "
                f"{y.shape}"
            )
    return tuple(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts of lists, bytes and numpy arrays) and refuses anything else."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays and lists")


_CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{where}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{where}: not a CIFAR-10 python batch (expected a dict, got {type(batch).__name__})")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{where}: a CIFAR-10 batch needs the keys 'data' and 'labels', got {sorted(batch)}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8 or labels.shape != (data.shape[0],):
        raise ValueError(
            f"{where}: expected 'data' uint8 of shape (n, 3072) and n 'labels', got {data.dtype} {data.shape} and "
            f"{labels.shape}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def load_cifar10(path: Path, how_to_get: str) -> tuple[np.ndarray, ...]:
    """CIFAR-10 from a directory of batches, a directory holding ``cifar-10-batches-py/``, or the ``.tar.gz``."""
    tar_path = None
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        tar_path = path
    elif path.is_dir():
        if (path / "cifar-10-batches-py").is_dir():
            path = path / "cifar-10-batches-py"
        elif not (path / "test_batch").is_file() and (path / "cifar-10-python.tar.gz").is_file():
            tar_path = path / "cifar-10-python.tar.gz"
    else:
        raise FileNotFoundError(f"cifar10: {path} does not exist. {how_to_get}")
    raws: dict[str, bytes] = {}
    if tar_path is not None:
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if base in _CIFAR_FILES and member.isfile():
                    fileobj = tar.extractfile(member)
                    if fileobj is not None:
                        raws[base] = fileobj.read()
        where = str(tar_path)
    else:
        for fname in _CIFAR_FILES:
            if (path / fname).is_file():
                raws[fname] = (path / fname).read_bytes()
        where = str(path)
    missing = [f for f in _CIFAR_FILES if f not in raws]
    if missing:
        raise FileNotFoundError(f"cifar10: {where} lacks {', '.join(missing)}. {how_to_get}")
    train = [_cifar_batch(raws[f], f"{where}/{f}") for f in _CIFAR_FILES[:-1]]
    x_te, y_te = _cifar_batch(raws["test_batch"], f"{where}/test_batch")
    x_tr = np.concatenate([b[0] for b in train])
    y_tr = np.concatenate([b[1] for b in train])
    return x_tr, y_tr, x_te, y_te


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: the optional npz array that says how to read a 3-D ``x``: ``"images"`` (the default) or ``"sequences"``
NPZ_LAYOUT_KEY = "layout"


def load_npz(path: Path) -> tuple[tuple[np.ndarray, ...], np.ndarray | None]:
    """The arrays ``x_train, y_train, x_test, y_test`` of an npz file (no pickled objects allowed), and its
    ``layout`` array if it has one."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected an .npz with arrays {', '.join(NPZ_KEYS)})")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
        # a file that is no archive reads as pickled data, which allow_pickle=False refuses with a ValueError
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"{path}: not an .npz archive (it holds one array); save the data with np.savez")
    with archive as f:
        missing = [k for k in NPZ_KEYS if k not in f.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; an npz data set needs {list(NPZ_KEYS)}")
        try:
            layout = f[NPZ_LAYOUT_KEY] if NPZ_LAYOUT_KEY in f.files else None
            return tuple(f[k] for k in NPZ_KEYS), layout
        except (OSError, EOFError, ValueError) as e:
            raise ValueError(f"{path}: not a readable .npz file ({e})") from None
