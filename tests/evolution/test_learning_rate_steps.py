"""TrainThenFitness(learning_rate_steps=...): the epochs train in steps at factors of the candidate's learning rate."""

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.evolution import learning_rate_plan

DECAY = ((0.5, 1.0), (0.3, 0.3), (0.2, 0.1))


def blobs(n=120, features=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, features)).astype(np.float32) * 4
    y = np.arange(n, dtype=np.int32) % classes
    return centres[y] + rng.standard_normal((n, features)).astype(np.float32) * 0.5, y


def mlp(key=0):
    inp = ng.input_vertex("in", shape=(8,))
    h = ng.vertex("h", ng.Dense(16, "relu"), inp)
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("out", ng.Dense(3), h))


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.asarray(u).tobytes() == np.asarray(v).tobytes() for u, v in zip(la, lb))


def score(key, candidate):
    return candidate.replace(fitness=0.5)


@pytest.mark.parametrize("epochs", [1, 2, 3, 5, 7, 10, 24])
def test_the_plan_trains_every_epoch_once_with_decreasing_factors(epochs):
    plan = learning_rate_plan(epochs, DECAY)
    assert sum(n for n, _ in plan) == epochs and all(n >= 1 for n, _ in plan)
    factors = [f for _, f in plan]
    assert factors == [1.0, 0.3, 0.1][: len(plan)]
    assert learning_rate_plan(epochs) == [(epochs, 1.0)]
    assert learning_rate_plan(0, DECAY) == [] and learning_rate_plan(0) == []


def test_steps_are_the_chained_engine_calls_at_the_scaled_learning_rates():
    x, y = blobs()
    cand = ng.Candidate(mlp(), optimiser=ng.Adam(0.02), batch_size=16)
    f = ng.TrainThenFitness((x, y), fitness=score, epochs=5, learning_rate_steps=DECAY, keep_optimiser_state=True)
    key = jax.random.key(3)
    got = f(key, cand)
    train_key = jax.random.split(key)[0]
    graph, state = cand.graph, None
    for i, (n, factor) in enumerate([(2, 1.0), (2, 0.3), (1, 0.1)]):
        r = ng.train_graph(
            jax.random.fold_in(train_key, i),
            graph,
            x,
            y,
            optimiser=ng.Adam(0.02 * factor),
            batch_size=16,
            epochs=n,
            opt_state=state,
        )
        graph, state = r.graph, r.opt_state
    assert leaves_equal(got.graph.params, graph.params)
    assert leaves_equal(got.opt_state, state)  # the kept state is the last step's
    assert got.info["train_epochs"] == 5 and got.info["train_examples"] == 5 * 120
    assert got.info["train_steps"] == 5 * 8
    assert got.optimiser == ng.Adam(0.02)  # the candidate's own learning rate is unchanged


def test_a_decay_differs_from_constant_training_and_no_steps_is_the_single_call():
    x, y = blobs()
    cand = ng.Candidate(mlp(), optimiser=ng.SGD(0.1), batch_size=16)
    key = jax.random.key(4)
    plain = ng.TrainThenFitness((x, y), fitness=score, epochs=4)(key, cand)
    one = ng.TrainThenFitness((x, y), fitness=score, epochs=4, learning_rate_steps=((1.0, 1.0),))(key, cand)
    stepped = ng.TrainThenFitness((x, y), fitness=score, epochs=4, learning_rate_steps=DECAY)(key, cand)
    expected = ng.train_graph(
        jax.random.split(key)[0], cand.graph, x, y, optimiser=ng.SGD(0.1), batch_size=16, epochs=4
    )
    assert leaves_equal(plain.graph.params, expected.graph.params)
    assert leaves_equal(one.graph.params, expected.graph.params)
    assert not leaves_equal(stepped.graph.params, expected.graph.params)
    assert stepped.info["train_examples"] == plain.info["train_examples"] == 4 * 120


def test_a_nan_in_a_later_step_gives_the_invalid_fitness_and_finite_weights():
    x, y = blobs()
    # the first step at 1e-3 x the rate trains; the second at the rate itself diverges
    f = ng.TrainThenFitness(
        (x, y), fitness=score, epochs=4, invalid_fitness=-1.0, learning_rate_steps=((0.5, 1e-32), (0.5, 1.0))
    )
    c = f(jax.random.key(0), ng.Candidate(mlp(), optimiser=ng.SGD(1e30), batch_size=8))
    assert c.fitness == -1.0 and "loss detected" in c.info["failure"]
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(c.graph.params))


@pytest.mark.parametrize(
    "steps, error",
    [
        ("decay", TypeError),
        (((0.5,),), ValueError),
        (((0.0, 1.0),), ValueError),
        (((1.5, 1.0),), ValueError),
        (((0.5, -1.0),), ValueError),
        (((0.5, float("nan")),), ValueError),
        (((True, 1.0),), ValueError),
    ],
)
def test_bad_steps_are_refused_by_name(steps, error):
    x, y = blobs()
    with pytest.raises(error, match="learning_rate_steps"):
        ng.TrainThenFitness((x, y), fitness=score, learning_rate_steps=steps)


def test_steps_given_as_lists_are_kept_as_tuples():
    x, y = blobs()
    f = ng.TrainThenFitness((x, y), fitness=score, learning_rate_steps=[[0.5, 1], [0.5, 0.1]])
    assert f.learning_rate_steps == ((0.5, 1.0), (0.5, 0.1))
