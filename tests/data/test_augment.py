import jax
import numpy as np
import pytest

import naivega_jax as ng


def images(n=16, h=5, w=6, c=2):
    return np.arange(n * h * w * c, dtype=np.float32).reshape(n, h, w, c)


def shifted(x, sh, sw):
    """Reference: np.roll forward, wrapped rows and columns zeroed."""
    out = np.roll(x, (sh, sw), axis=(0, 1))
    out[:sh] = 0
    out[:, :sw] = 0
    return out


def test_flip_probability_one_and_zero():
    x = images()
    (all_flipped,) = list(ng.FlipIterator([x], p=1.0, key=jax.random.key(0)))
    assert np.array_equal(all_flipped, x[:, :, ::-1, :])
    (none_flipped,) = list(ng.FlipIterator([x], p=0.0, key=jax.random.key(0)))
    assert np.array_equal(none_flipped, x)


def test_flip_is_per_example_and_keyed():
    x = images(n=200, h=2, w=3, c=1)
    it = ng.FlipIterator([x], p=0.5, key=jax.random.key(1))
    (out,) = list(it.iter_pass(0))
    flipped = [np.array_equal(o, e[:, ::-1]) for o, e in zip(out, x)]
    kept = [np.array_equal(o, e) for o, e in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))  # each example either flipped whole or untouched
    assert 70 <= sum(flipped) <= 130  # about half, drawn per example: 200 draws of p=0.5
    assert np.array_equal(next(iter(it.iter_pass(0))), out)
    assert not np.array_equal(next(iter(it.iter_pass(1))), out)
    assert not np.array_equal(next(iter(ng.FlipIterator([x], key=jax.random.key(2)))), out)


def test_flip_other_axis_and_tuple_batches():
    x, y = images(n=4), np.arange(4)
    ((xb, yb),) = list(ng.FlipIterator([(x, y)], p=1.0, key=jax.random.key(0), axis=1))
    assert np.array_equal(xb, x[:, ::-1]) and np.array_equal(yb, y)
    assert np.array_equal(x, images(n=4))  # the input is not modified


def test_flip_rejects_the_batch_axis_and_bad_p():
    with pytest.raises(ValueError, match="axis 0 is the batch"):
        list(ng.FlipIterator([images()], key=jax.random.key(0), axis=0))
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        ng.FlipIterator([images()], p=1.5, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"jax\.random key"):
        ng.FlipIterator([images()], key=3)


def test_shift_per_example_within_bounds_with_zeroed_wrap():
    x = images(n=64) + 1.0  # no zeros in the input: a zero means a wrapped entry
    (out,) = list(ng.ShiftIterator([x], (2, 3), key=jax.random.key(0)))
    seen = set()
    for o, e in zip(out, x):
        matches = [(sh, sw) for sh in range(3) for sw in range(4) if np.array_equal(o, shifted(e, sh, sw))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 8  # 12 possible shift pairs, drawn per example


def test_shift_sequences_single_int_and_labels_untouched():
    x, y = np.arange(1, 41, dtype=np.float32).reshape(4, 10, 1), np.arange(4)
    ((xb, yb),) = list(ng.ShiftIterator([(x, y)], 3, key=jax.random.key(5)))
    assert np.array_equal(yb, y)
    for o, e in zip(xb[..., 0], x[..., 0]):
        s = int(np.sum(o == 0))
        assert 0 <= s <= 3 and np.array_equal(o[s:], e[: 10 - s])


def test_shift_zero_is_identity_and_shape_errors():
    x = images()
    (out,) = list(ng.ShiftIterator([x], 0, key=jax.random.key(0)))
    assert np.array_equal(out, x)
    with pytest.raises(ValueError, match="2 spatial axes"):
        list(ng.ShiftIterator([x], (1, 2, 3), key=jax.random.key(0)))
    with pytest.raises(ValueError, match="no spatial axis"):
        list(ng.ShiftIterator([np.zeros((4, 3))], 1, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="ints >= 0"):
        ng.ShiftIterator([x], -1, key=jax.random.key(0))


def test_augmented_chunks_repeat_exactly():
    x = images(n=12)
    base = ng.ShiftIterator(
        ng.FlipIterator(ng.BatchIterator(x, 4, shuffle=jax.random.key(0)), key=jax.random.key(1)),
        2,
        key=jax.random.key(2),
    )
    for chunk in ng.RepeatPartitionIterator(base, 2):
        first = [b.copy() for b in chunk]
        assert all(np.array_equal(a, b) for a, b in zip(first, chunk))
