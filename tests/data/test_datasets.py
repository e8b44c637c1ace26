import gzip
import io
import pickle
import struct
import tarfile
import time

import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.data import _mnist1d
from naivega_jax.data import datasets as ds

MNIST1D_Y20 = [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9, 4, 3, 4, 5, 1, 9, 0, 3]
MNIST1D_X_TRAIN_SUM = -51.78746787509559  # the float64 training x of the default data set (x_test sums to +51.787...)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("NAIVEGA_JAX_CACHE", str(directory))
    return directory


# --- MNIST-1D ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    return _mnist1d.make_dataset()


def test_mnist1d_generator_reference_values(generated):
    assert generated["y"][:20].tolist() == MNIST1D_Y20
    assert generated["x"].dtype == np.float64
    assert generated["x"].sum() == pytest.approx(MNIST1D_X_TRAIN_SUM, rel=1e-12, abs=1e-9)
    assert generated["x"].shape == (4000, 40) and generated["x_test"].shape == (1000, 40)
    assert np.bincount(generated["y"], minlength=10).sum() == 4000 and set(generated["y_test"].tolist()) == set(
        range(10)
    )


def test_mnist1d_generator_leaves_global_random_state_alone(generated):
    before = np.random.get_state()[1].copy()
    again = _mnist1d.make_dataset(num_samples=100)
    assert np.array_equal(np.random.get_state()[1], before)
    assert again["x"].shape == (80, 40)
    with pytest.raises(ValueError, match="unknown arguments"):
        _mnist1d.make_dataset(samples=3)


def test_mnist1d_load_caches_as_npz(cache, generated):
    x_tr, y_tr, x_te, y_te = ng.datasets.load("mnist1d")
    assert (x_tr.shape, y_tr.shape, x_te.shape, y_te.shape) == ((4000, 40, 1), (4000,), (1000, 40, 1), (1000,))
    assert (x_tr.dtype, y_tr.dtype) == (np.float32, np.int32)
    assert y_tr[:20].tolist() == MNIST1D_Y20
    assert float(x_tr.sum(dtype=np.float64)) == pytest.approx(MNIST1D_X_TRAIN_SUM, abs=1e-3)
    assert np.array_equal(x_te[..., 0], generated["x_test"].astype(np.float32))
    assert (cache / "mnist1d-v1.npz").is_file()
    start = time.perf_counter()
    again = ng.datasets.load("mnist-1d")
    assert time.perf_counter() - start < 0.5
    assert all(np.array_equal(a, b) for a, b in zip(again, (x_tr, y_tr, x_te, y_te)))


def test_mnist1d_damaged_cache_is_regenerated(tmp_path):
    (tmp_path / "mnist1d-v1.npz").write_bytes(b"not an npz")
    y_tr = ng.datasets.load("mnist1d", path=tmp_path)[1]
    assert y_tr[:20].tolist() == MNIST1D_Y20
    with np.load(tmp_path / "mnist1d-v1.npz") as f:
        assert f["x_train"].shape == (4000, 40, 1)


# --- digits --------------------------------------------------------------------------------------------------------


def test_digits_shapes_scale_and_labels():
    x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")
    assert x_tr.shape == (1437, 8, 8, 1) and x_te.shape == (360, 8, 8, 1)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    assert sorted(set(y_tr.tolist())) == list(range(10)) and sorted(set(y_te.tolist())) == list(range(10))
    assert np.bincount(y_te).min() >= 30  # the fixed split (last 20%) is not skewed by class
    again = ng.datasets.load("digits")
    assert np.array_equal(again[0], x_tr) and np.array_equal(again[3], y_te)
    with pytest.raises(ValueError, match="takes no path"):
        ng.datasets.load("digits", path="/tmp")


# --- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------------------------------


def idx_bytes(array):
    codes = {np.dtype(np.uint8): 8, np.dtype(">f4"): 0x0D}
    array = np.asarray(array)
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_set(directory, n_train=6, n_test=4, spelling="-idx", compress=True):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, 3, 2), dtype=np.uint8),
        "train-labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images": rng.integers(0, 256, (n_test, 3, 2), dtype=np.uint8),
        "t10k-labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        kind = "idx3" if a.ndim == 3 else "idx1"
        name = f"{stem}-{kind}-ubyte" if spelling == "-idx" else f"{stem}.{kind}-ubyte"
        raw = idx_bytes(a)
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize(("spelling", "compress"), [("-idx", True), ("-idx", False), (".idx", False)])
def test_mnist_from_tiny_idx_files(tmp_path, spelling, compress):
    arrays = write_idx_set(tmp_path, spelling=spelling, compress=compress)
    x_tr, y_tr, x_te, y_te = ng.datasets.load("mnist", path=tmp_path)
    assert x_tr.shape == (6, 3, 2, 1) and x_te.shape == (4, 3, 2, 1)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32
    np.testing.assert_allclose(x_tr[..., 0], arrays["train-images"] / 255.0, rtol=1e-6)
    assert y_tr.tolist() == arrays["train-labels"].tolist() and y_te.tolist() == arrays["t10k-labels"].tolist()


def test_fashion_mnist_from_a_directory(tmp_path):
    arrays = write_idx_set(tmp_path)
    x_tr, y_tr, x_te, _ = ng.datasets.load("fashion-mnist", path=str(tmp_path))
    assert x_te.shape == (4, 3, 2, 1) and y_tr.tolist() == arrays["train-labels"].tolist()
    assert float(x_tr.max()) <= 1.0


def test_read_idx_types_and_errors(tmp_path):
    f = tmp_path / "floats-idx2-ubyte"
    f.write_bytes(idx_bytes(np.arange(6, dtype=">f4").reshape(2, 3)))
    assert ds.read_idx(f).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        ds.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 3), np.uint8))[:-1])
    with pytest.raises(ValueError, match="needs 6 bytes, the file has 5"):
        ds.read_idx(short)


def test_idx_errors_name_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"load\('mnist'\) needs path=DIR"):
        ng.datasets.load("mnist")
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[.gz\]"):
        ng.datasets.load("mnist", path=tmp_path)
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        ng.datasets.load("fashion-mnist")


def test_idx_label_count_mismatch(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(ValueError, match=r"shapes \(6, 3, 2\) and \(5,\)"):
        ng.datasets.load("mnist", path=tmp_path)


@pytest.mark.skipif(not ds.FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_the_debian_package():
    x_tr, y_tr, x_te, y_te = ng.datasets.load("fashion-mnist")
    assert x_tr.shape == (60000, 28, 28, 1) and x_te.shape == (10000, 28, 28, 1)
    assert np.bincount(y_te).tolist() == [1000] * 10 and np.bincount(y_tr).tolist() == [6000] * 10
    assert x_tr.min() >= 0.0 and x_tr.max() == 1.0


# --- CIFAR-10 --------------------------------------------------------------------------------------------------------


def cifar_batch_bytes(images, labels, label):
    """A batch exactly as the python CIFAR-10 files: a protocol-2 pickle of a dict with bytes keys."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # rows of 1024 R, 1024 G, 1024 B values
    batch = {
        b"batch_label": label.encode(),
        b"labels": list(labels),
        b"data": data,
        b"filenames": [b"x.png"] * len(labels),
    }
    return pickle.dumps(batch, protocol=2)


def write_cifar(directory, per_batch=2):
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    content = {}
    for name in names:
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        content[name] = (images, labels, cifar_batch_bytes(images, labels, name))
    directory.mkdir(parents=True, exist_ok=True)
    for name, (_, _, raw) in content.items():
        (directory / name).write_bytes(raw)
    return content


def check_cifar(loaded, content):
    x_tr, y_tr, x_te, y_te = loaded
    assert x_tr.shape == (10, 32, 32, 3) and x_te.shape == (2, 32, 32, 3)
    expected_train = np.concatenate([content[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_allclose(x_tr, expected_train / 255.0, rtol=1e-6)
    assert y_tr.tolist() == [y for i in range(1, 6) for y in content[f"data_batch_{i}"][1]]
    assert y_te.tolist() == content["test_batch"][1]
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32


def test_cifar10_from_batches_dir_and_parent_dir(tmp_path):
    content = write_cifar(tmp_path / "cifar-10-batches-py")
    check_cifar(ng.datasets.load("cifar10", path=tmp_path / "cifar-10-batches-py"), content)
    check_cifar(ng.datasets.load("cifar-10", path=tmp_path), content)


def test_cifar10_from_the_tarball(tmp_path):
    content = write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    tar_path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    check_cifar(ng.datasets.load("cifar10", path=tar_path), content)


def test_cifar10_errors(tmp_path):
    with pytest.raises(ValueError, match=r"load\('cifar10'\) needs path=DIR"):
        ng.datasets.load("cifar10")
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        ng.datasets.load("cifar10", path=tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"expected 'data' uint8 of shape \(n, 3072\)"):
        ng.datasets.load("cifar10", path=tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(io.BytesIO(b"")))  # a pickle of something else
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch"):
        ng.datasets.load("cifar10", path=tmp_path)


# --- npz and bad names -----------------------------------------------------------------------------------------------


def test_npz_file(tmp_path):
    f = tmp_path / "mine.npz"
    x = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    np.savez(f, x_train=x, y_train=np.arange(5), x_test=x[:2], y_test=np.array([1.0, 0.0]))
    x_tr, _, _, y_te = ng.datasets.load(str(f))
    assert x_tr.shape == (5, 4, 3, 1) and x_tr.dtype == np.float32  # (n, H, W): one-channel images
    np.testing.assert_allclose(x_tr, x[..., None] / 255.0, rtol=1e-6)
    assert y_te.tolist() == [1, 0] and y_te.dtype == np.int32
    floats = tmp_path / "floats.npz"
    np.savez(floats, x_train=np.full((3, 2), 7.5), y_train=np.zeros(3), x_test=np.ones((1, 2)), y_test=np.zeros(1))
    assert ng.datasets.load("npz", path=floats)[0].max() == 7.5  # non-uint8 x is only cast
    np.savez(tmp_path / "partial.npz", x_train=x, y_train=np.arange(5))
    with pytest.raises(ValueError, match=r"missing arrays \['x_test', 'y_test'\]"):
        ng.datasets.load(str(tmp_path / "partial.npz"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        ng.datasets.load(str(tmp_path / "absent.npz"))


def test_unknown_name_and_bad_types():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; expected one of digits, mnist1d"):
        ng.datasets.load("imagenet")
    with pytest.raises(TypeError, match="name must be a string"):
        ng.datasets.load(3)
