import collections

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.search._parspace import parspace_of, widen


def test_parspace_with_cycling_rng(seq_rng):
    rng = seq_rng()
    space = ng.ParSpace(range(1, 5), range(5, 8), range(8, 10))
    assert space.sample(rng) == (1, 6, 8)
    assert space.sample(rng) == (2, 7, 9)


def test_parspace_1d_and_2d_with_cycling_rng(seq_rng):
    rng = seq_rng()
    space = ng.ParSpace(range(1, 4))
    assert [space.sample(rng) for _ in range(4)] == [1, 2, 3, 1]
    rng = seq_rng()
    space = ng.search.ParSpace2D(range(2, 5))
    assert space.sample(rng) == (2, 3)
    assert space.sample(rng) == (4, 2)


def test_singletons(key):
    assert ng.search.SingletonParSpace(666)(key) == 666
    for d in range(2, 5):
        assert ng.search.SingletonParSpace(*range(1, d + 1))(key) == tuple(range(1, d + 1))
    assert ng.search.Singleton2DParSpace(7)(key) == (7, 7)


def test_singleton_consumes_no_draws(seq_rng):
    rng = seq_rng()
    ng.search.SingletonParSpace(1, 2).sample(rng)
    assert rng.ind == 0


def test_coupled_parspace_repeats_one_draw():
    space = ng.search.CoupledParSpace([1, 3, 5], 2)
    draws = [space(jax.random.key(i)) for i in range(40)]
    assert all(h == w for h, w in draws)
    assert {h for h, _ in draws} == {1, 3, 5}
    assert ng.search.CoupledParSpace(ng.ParSpace([4]), 3)(jax.random.key(0)) == (4, 4, 4)


def test_parspace_draws_uniformly_and_independently_from_keys():
    space = ng.ParSpace((1, 2, 3), (4, 5))
    counts = collections.Counter(space(jax.random.key(i)) for i in range(600))
    assert set(counts) == {(a, b) for a in (1, 2, 3) for b in (4, 5)}
    # 100 expected per cell; a 5-sigma band.
    assert all(50 < c < 150 for c in counts.values())


def test_same_key_same_value_different_keys_vary():
    space = ng.ParSpace(range(1000))
    assert space(jax.random.key(3)) == space(jax.random.key(3))
    assert len({space(jax.random.key(i)) for i in range(20)}) > 15


def test_parspace_of_and_widen():
    assert parspace_of(3) == ng.search.SingletonParSpace(3)
    assert parspace_of([1, 2]) == ng.ParSpace([1, 2])
    assert parspace_of(np.array([1, 2])) == ng.ParSpace([1, 2])
    assert parspace_of(range(2)) == ng.ParSpace((0, 1))
    assert parspace_of("relu") == ng.search.SingletonParSpace("relu")
    space = ng.ParSpace([1, 2])
    assert parspace_of(space) is space
    assert widen(ng.search.SingletonParSpace(3), 2) == ng.search.SingletonParSpace(3, 3)
    assert widen(ng.ParSpace([1, 3]), 2) == ng.ParSpace([1, 3], [1, 3])
    assert widen(ng.search.CoupledParSpace([1, 3], 1), 2) == ng.search.CoupledParSpace([1, 3], 2)
    tuples = ng.ParSpace([(1, 3), (3, 1)])
    assert widen(tuples, 2) is tuples
    with pytest.raises(ValueError, match="1-D or 3-D"):
        widen(ng.ParSpace([1], [2]), 3)


def test_spaces_are_hashable_and_comparable():
    assert hash(ng.ParSpace([1, 2])) == hash(ng.ParSpace((1, 2)))
    assert ng.ParSpace([1, 2]) == ng.ParSpace((1, 2))
    assert ng.ParSpace([1, 2]) != ng.ParSpace([2, 1])
    assert "ParSpace" in repr(ng.ParSpace([1, 2]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ng.ParSpace(), "at least one"),
        (lambda: ng.ParSpace([]), "non-empty"),
        (lambda: ng.search.SingletonParSpace(), "at least one"),
        (lambda: ng.search.CoupledParSpace([1, 2], 0), "positive int"),
        (lambda: ng.search.CoupledParSpace(ng.ParSpace([1], [2]), 2), "1-D"),
    ],
)
def test_bad_parspaces_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_string_is_not_a_sequence_of_choices():
    with pytest.raises(TypeError, match="sequence"):
        ng.ParSpace("abc")
