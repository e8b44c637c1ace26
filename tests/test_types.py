"""The package type-checks, and the fixes the type checker found behave as their annotations say."""

import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.graph._remap import take


def _spec():
    return ng.GraphSpec.create(
        [("in", ng.graph.Input((5,)), ()), ("d", ng.Dense(3), ("in",)), ("e", ng.Dense(2), ("d",))], ["in"], ["e"]
    )


def test_replace_entries_ignores_a_removal_of_a_vertex_it_does_not_have():
    # a None change for an unknown name used to be unpacked as (op, inputs): TypeError
    spec = _spec().replace_entries({"ghost": None})
    assert spec.names == ("in", "d", "e")
    assert spec.nin("e") == (3,)


def test_replace_entries_removes_and_adds():
    spec = _spec().replace_entries({"d": None, "f": (ng.Dense(4), ("in",)), "e": (ng.Dense(2), ("f",))})
    assert spec.names == ("in", "f", "e")
    assert spec.nin("e") == (4,)


@pytest.mark.parametrize("fill", ["fanin", "block"])
def test_take_with_a_random_fill_needs_a_generator(fill):
    # used to fail with AttributeError: 'NoneType' object has no attribute 'standard_normal'
    with pytest.raises(ValueError, match="rng must be a numpy Generator"):
        take(np.ones((2, 3)), np.array([0, -1, 2, -1]), 1, fill, None)


def test_take_with_a_constant_fill_needs_no_generator():
    out = take(np.ones((2, 3)), np.array([0, -1, 2]), 1, 0.5, None)
    assert out.tolist() == [[1.0, 0.5, 1.0], [1.0, 0.5, 1.0]]


def _candidate(fitness):
    import jax

    inp = ng.input_vertex("in", shape=(2,))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    return ng.Candidate(g, fitness=fitness)


def test_population_best_is_the_first_of_the_highest():
    pop = ng.evolution.Population((_candidate(None), _candidate(2.0), _candidate(5.0), _candidate(5.0)))
    assert pop.best() is pop.candidates[2]
