import numpy as np
import pytest

import naivega_jax as ng


@pytest.mark.parametrize(("n", "fraction", "n_val"), [(100, 0.1, 10), (25, 0.1, 3), (10, 0.25, 3), (2, 0.1, 1)])
def test_validation_is_the_last_ceil_fraction(n, fraction, n_val):
    x, y = np.arange(n * 2).reshape(n, 2), np.arange(n)
    x_tr, y_tr, x_val, y_val = ng.data.train_val_split(x, y, fraction)
    assert y_val.tolist() == list(range(n - n_val, n))
    assert y_tr.tolist() == list(range(n - n_val))
    assert np.array_equal(x_val, x[n - n_val :]) and np.array_equal(x_tr, x[: n - n_val])


def test_split_errors():
    with pytest.raises(ValueError, match="x has 5 examples but y has 4"):
        ng.data.train_val_split(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\), got 1.0"):
        ng.data.train_val_split(np.zeros((5, 2)), np.zeros(5), 1.0)
    with pytest.raises(ValueError, match="leaves no training data"):
        ng.data.train_val_split(np.zeros((1, 2)), np.zeros(1), 0.5)


def test_check_labels():
    assert ng.data.check_labels(np.array([0.0, 2.0, 1.0])).tolist() == [0, 2, 1]
    assert ng.data.check_labels([0, 2, 1], 3).dtype == np.int32
    with pytest.raises(ValueError, match=r"0..2 \(num_classes=3\), got 3"):
        ng.data.check_labels([0, 3], 3)
    with pytest.raises(ValueError, match="whole numbers"):
        ng.data.check_labels([0.5, 1.0])
    with pytest.raises(ValueError, match=">= 0, got -1"):
        ng.data.check_labels([0, -1])
    with pytest.raises(ValueError, match="1-D"):
        ng.data.check_labels(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="integer class indices"):
        ng.data.check_labels(["a", "b"])


def test_encode_labels_sorted_unique():
    codes, classes = ng.data.encode_labels([10, 30, 10, 20])
    assert codes.tolist() == [0, 2, 0, 1] and classes.tolist() == [10, 20, 30]
    assert codes.dtype == np.int32
