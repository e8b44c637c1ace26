"""Bad data is refused before any training, with a message naming the argument, the value and what was expected."""

import hashlib
import re

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import data_fingerprint, encode_known_labels
from naivega_jax.data import datasets as ds


def _xy(n=40, shape=(6, 1)):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, *shape)).astype(np.float32), np.arange(n) % 2


def _fit(tmp_path, x, y, **kwargs):
    return ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "run", progress=False, **kwargs)


# --- test data --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_te", "y_te", "error", "message"),
    [
        (np.zeros((0, 6, 1)), np.zeros(0), ValueError, r"^fit: test_data x is empty \(0 examples\)$"),
        (
            np.r_[np.zeros((3, 6, 1)), np.full((1, 6, 1), np.inf)],
            np.arange(4) % 2,
            ValueError,
            r"^fit: test_data x holds 6 NaN or Inf values \(the first, inf, at index \(3, 0, 0\)\); clean the data",
        ),
        (
            np.where(np.arange(6)[None, :, None] == 4, np.nan, np.zeros((2, 6, 1))),
            np.arange(2),
            ValueError,
            r"^fit: test_data x holds 2 NaN or Inf values \(the first, nan, at index \(0, 4, 0\)\)",
        ),
        (np.full((2, 6, 1), "a"), np.arange(2), TypeError, r"^fit: test_data x must be a numeric array, got dtype <U1"),
        (np.zeros((2, 6, 1)), np.zeros((2, 1)), ValueError, r"test_data must be x of shape \(n, 6, 1\) .* y \(2, 1\)"),
        (
            np.zeros((5, 6, 1)),
            np.array([0, 1, 7, 7, 9]),
            ValueError,
            r"^fit: test_data y holds labels \[7, 9\] that the training data does not have \(its 2 classes: "
            r"\[0, 1\]\); 3 of 5 examples carry them$",
        ),
    ],
)
def test_bad_test_data_is_refused_before_any_work(tmp_path, x_te, y_te, error, message):
    x, y = _xy()
    with pytest.raises(error, match=message):
        _fit(tmp_path, x, y, test_data=(x_te, y_te))
    assert not (tmp_path / "run").exists()


def test_test_data_is_shaped_and_encoded_like_the_training_data():
    from naivega_jax.autofit._data import _prepare_test

    x, y = _prepare_test((np.ones((3, 6)), np.array([20.0, 10, 20])), np.array([10, 20]), (6, 1))
    assert x.shape == (3, 6, 1) and x.dtype == np.float32
    assert y.tolist() == [1, 0, 1] and y.dtype == np.int32


# --- label encoding ---------------------------------------------------------------------------------------------------


def test_encode_known_labels_codes_and_refuses_labels_it_never_saw():
    classes = np.array([3, 5, 8])
    codes = encode_known_labels(np.array([8, 3, 5, 5.0]), classes)
    assert codes.tolist() == [2, 0, 1, 1] and codes.dtype == np.int32
    # np.searchsorted, what an evaluation used before, encodes 4 as class 5 and 9 past the last class
    assert np.searchsorted(classes, [4, 9]).tolist() == [1, 3]
    with pytest.raises(
        ValueError,
        match=r"^y_test holds labels \[4, 9\] that the training data does not have \(its 3 classes: \[3, 5, 8\]\); "
        r"2 of 4 examples carry them$",
    ):
        encode_known_labels([3, 4, 9, 8], classes, where="y_test")
    with pytest.raises(ValueError, match=r"^y holds labels \[nan\] that the training data does not have"):
        encode_known_labels([3.0, np.nan], classes)
    assert encode_known_labels(["dog", "ant"], np.array(["ant", "cat", "dog"])).tolist() == [2, 0]


def test_encode_known_labels_lists_at_most_ten_unknown_labels():
    with pytest.raises(ValueError, match=r"labels \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...\] \(28 distinct\)"):
        encode_known_labels(np.arange(30), [0, 1])


@pytest.mark.parametrize(
    ("y", "classes", "message"),
    [
        (np.zeros((2, 2)), [0, 1], r"^labels must be a vector of labels, one per example, got shape \(2, 2\)"),
        ([0, 1], [1, 0], r"^labels: the known classes must be distinct and sorted .* got \[1, 0\]"),
        ([0, 1], [], r"^labels: the known classes must be distinct and sorted .* got \[\]"),
        (["a"], [0, 1], r"^labels holds labels of dtype <U1, which cannot match classes of dtype int64"),
    ],
)
def test_encode_known_labels_refuses_malformed_arguments(y, classes, message):
    with pytest.raises(ValueError, match=message):
        encode_known_labels(y, np.asarray(classes, dtype=np.int64) if classes else np.array([]), where="labels")


# --- npz layout -------------------------------------------------------------------------------------------------------


def _save(path, x, **extra):
    np.savez(path, x_train=x, y_train=np.arange(len(x)) % 2, x_test=x[:2], y_test=np.array([1, 0]), **extra)
    return str(path)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_npz_of_3d_x_loads_one_channel_images(tmp_path, dtype):
    x = np.arange(5 * 4 * 3).reshape(5, 4, 3).astype(dtype)
    x_tr, _, x_te, _ = ng.datasets.load(_save(tmp_path / "images.npz", x))
    assert x_tr.shape == (5, 4, 3, 1) and x_te.shape == (2, 4, 3, 1) and x_tr.dtype == np.float32
    scale = 255.0 if dtype == np.uint8 else 1.0
    np.testing.assert_allclose(x_tr[..., 0], x / scale, rtol=1e-6)


def test_npz_layout_sequences_keeps_3d_x_and_adds_a_channel_to_2d_x(tmp_path):
    x = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    x_tr = ng.datasets.load(_save(tmp_path / "seq.npz", x, layout="sequences"))[0]
    assert x_tr.shape == (5, 4, 3)
    np.testing.assert_array_equal(x_tr, x)
    flat = ng.datasets.load(_save(tmp_path / "flat.npz", x[:, :, 0], layout="sequences"))[0]
    assert flat.shape == (5, 4, 1)
    images = ng.datasets.load(_save(tmp_path / "img.npz", x, layout="images"))[0]
    assert images.shape == (5, 4, 3, 1)


def test_npz_without_layout_keeps_2d_and_4d_x(tmp_path):
    assert ng.datasets.load(_save(tmp_path / "v.npz", np.zeros((5, 7))))[0].shape == (5, 7)
    assert ng.datasets.load(_save(tmp_path / "i.npz", np.zeros((5, 4, 4, 3))))[0].shape == (5, 4, 4, 3)


@pytest.mark.parametrize(
    ("x", "layout", "message"),
    [
        (np.zeros((5, 4, 3)), "sequence", r"layout must be 'images' or 'sequences', got 'sequence'"),
        (np.zeros((5, 4, 3)), np.array([1, 2]), r"layout must be 'images' or 'sequences', got array\(\[1, 2\]\)"),
        (np.zeros((5, 4, 4, 1)), "sequences", r"layout='sequences' needs x_train of shape \(n, L\) or \(n, L, C\)"),
        (np.zeros((5, 4)), "images", r"layout='images' needs x_train of shape \(n, H, W\) or \(n, H, W, C\)"),
    ],
)
def test_npz_bad_layout_is_refused(tmp_path, x, layout, message):
    with pytest.raises(ValueError, match=message):
        ng.datasets.load(_save(tmp_path / "bad.npz", x, layout=layout))


def test_mnist1d_cache_says_it_holds_sequences(tmp_path, monkeypatch):
    fake = {"x": np.zeros((8, 40)), "y": np.arange(8) % 2, "x_test": np.zeros((2, 40)), "y_test": np.arange(2)}
    monkeypatch.setattr(ds, "_make_mnist1d", lambda: fake)
    ng.datasets.load("mnist1d", path=tmp_path)
    x_tr = ng.datasets.load(str(tmp_path / "mnist1d-v1.npz"))[0]
    assert x_tr.shape == (8, 40, 1)


# --- inputs too small for the default space ---------------------------------------------------------------------------


@pytest.mark.parametrize("in_shape", [(4, 1), (4, 3), (4, 4, 1), (4, 9, 2), (5, 1)])
def test_default_space_smallest_accepted_inputs_sample_graphs_that_compute(in_shape):
    space = ng.autofit.default_space(in_shape, 3)
    for seed in range(8):
        g = ng.sample_graph(jax.random.key(seed), space, ng.input_vertex("in", shape=in_shape))
        assert g(np.zeros((2, *in_shape), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("in_shape", [(3, 1), (1, 5), (2, 2, 1), (3, 8, 1), (8, 3, 1)])
def test_default_space_refuses_inputs_smaller_than_its_downsampling(in_shape):
    spatial = "x".join(map(str, in_shape[:-1]))
    with pytest.raises(
        ValueError,
        match=rf"^default_space: in_shape {re.escape(str(in_shape))} is too small: its spatial size {spatial} .* "
        r"at least 4 along every spatial axis; pad x to that, or pass a space= without downsampling, e.g. "
        + re.escape("ng.ArchSpaceChain(ng.autofit.conv_layer_space([16], [1, 3]), ng.GlobalPoolSpace(), ")
        + re.escape("ng.autofit.mlp_space(3))"),
    ):
        ng.autofit.default_space(in_shape, 3)
    # the default architecture at its shortest (one downsampling a block) cannot take this input
    with pytest.raises(ng.ShapeError, match="does not fit the input's spatial shape"):
        ng.sample_graph(jax.random.key(0), ng.autofit.default_space((4, 1), 3), ng.input_vertex("in", shape=in_shape))
    # and the space the message suggests can
    suggested = ng.ArchSpaceChain(
        ng.autofit.conv_layer_space([16], [1, 3]), ng.GlobalPoolSpace(), ng.autofit.mlp_space(3)
    )
    g = ng.sample_graph(jax.random.key(0), suggested, ng.input_vertex("in", shape=in_shape))
    assert g(np.zeros((2, *in_shape), np.float32)).shape == (2, 3)


def test_fit_on_tiny_sequences_is_refused_with_the_default_space_message(tmp_path):
    x, y = _xy(shape=(3, 1))
    with pytest.raises(ValueError, match=r"in_shape \(3, 1\) is too small"):
        _fit(tmp_path, x, y)


# --- data fingerprint -------------------------------------------------------------------------------------------------


def test_data_fingerprint_is_deterministic_and_layout_independent():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y = np.array([0, 1], np.int32)
    h = data_fingerprint(x, y)
    assert len(h) == 64 and int(h, 16) >= 0
    assert data_fingerprint(x.copy(), y.copy()) == h
    assert data_fingerprint(np.asfortranarray(x), y) == h
    assert not np.asfortranarray(x).flags.c_contiguous
    assert data_fingerprint(x.astype(">f4"), y) == h  # byte order is storage, not data
    sliced = np.arange(48, dtype=np.float32).reshape(2, 3, 8)[:, :, ::2]
    assert data_fingerprint(sliced, y) == data_fingerprint(np.ascontiguousarray(sliced), y)
    # pinned, so that a run recorded today is recognised by later versions
    assert data_fingerprint(np.arange(3, dtype=np.int32)) == data_fingerprint(np.array([0, 1, 2], "<i4"))
    a = np.arange(3, dtype=np.int32)
    by_hand = hashlib.sha256(b"naivega_jax data v1\n" + b"<i4 (3,) 12\n" + a.astype("<i4").tobytes())
    assert data_fingerprint(a) == by_hand.hexdigest()
    assert data_fingerprint(a) == "df938caf9a0277c674af15281a3ed60f420e39cf15730ee290f0ff65bc0b6ee3"


def test_data_fingerprint_changes_with_any_value_shape_dtype_or_order():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y = np.array([0, 1], np.int32)
    h = data_fingerprint(x, y)
    changed = x.copy()
    changed[1, 2, 3] = np.nextafter(changed[1, 2, 3], np.inf)
    others = [
        data_fingerprint(changed, y),
        data_fingerprint(x.reshape(2, 12), y),
        data_fingerprint(x.reshape(6, 4), y),
        data_fingerprint(x.astype(np.float64), y),
        data_fingerprint(x, y.astype(np.int64)),
        data_fingerprint(x.view(np.int32), y),
        data_fingerprint(y, x),
        data_fingerprint(x),
        data_fingerprint(x, y, y[:0]),
    ]
    assert len({h, *others}) == len(others) + 1


def test_data_fingerprint_refuses_object_arrays():
    with pytest.raises(TypeError, match=r"data_fingerprint: arrays\[1\] has dtype object"):
        data_fingerprint(np.zeros(2), np.array([{}, 1], dtype=object))
