"""Candidates that keep their optimiser state across generations: TrainThenFitness(keep_optimiser_state=True),
MapCandidate carrying the state through surgery, and checkpoints that save it."""

import jax
import numpy as np
import pytest

import naivega_jax as ng

X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)


def graph(key):
    inp = ng.input_vertex("in", shape=(4,))
    d1 = ng.vertex("d1", ng.Dense(6, "relu"), inp)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(2), d1))


def score(key, c):
    return c.replace(fitness=ng.evaluate_accuracy(c.graph, X, Y))


def fitness(keep, epochs=1):
    return ng.TrainThenFitness((X, Y), fitness=score, epochs=epochs, shuffle=False, keep_optimiser_state=keep)


def adam(candidate):
    """The candidate's Adam state (a spec's state: injected hyperparameters around optax's own)."""
    return candidate.opt_state.inner_state[0]


def test_kept_state_makes_two_generations_equal_one_longer_training(key):
    c = ng.Candidate(graph(key), optimiser=ng.Adam(1e-2), batch_size=16)
    twice = fitness(True)(key, fitness(True)(key, c))
    once = fitness(False, epochs=2)(key, c)
    for a, b in zip(jax.tree_util.tree_leaves(twice.graph.params), jax.tree_util.tree_leaves(once.graph.params)):
        np.testing.assert_array_equal(a, b)
    assert int(adam(twice).count) == 8  # 2 calls x 4 steps
    # Upstream's default restarts Adam every call: the same two calls then train differently, and keep nothing.
    reset = fitness(False)(key, fitness(False)(key, c))
    assert reset.opt_state is None
    diffs = [
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree_util.tree_leaves(reset.graph.params), jax.tree_util.tree_leaves(once.graph.params))
    ]
    assert max(diffs) > 1e-4


def test_a_mutated_child_continues_its_parents_moments_on_kept_neurons(key):
    parent = fitness(True)(key, ng.Candidate(graph(key), optimiser=ng.Adam(1e-2), batch_size=16))
    grow = ng.VertexMutation(ng.MutationFilter(lambda g, n: n == "d1", ng.NoutMutation(0.5, 0.5)))
    child = ng.MapCandidate(grow)(key, parent)
    assert child.graph.nout("d1") == 9
    mu_parent, mu_child = adam(parent).mu, adam(child).mu
    np.testing.assert_array_equal(np.asarray(mu_child["d1"]["kernel"])[:, :6], mu_parent["d1"]["kernel"])
    assert np.all(np.asarray(mu_child["d1"]["kernel"])[:, 6:] == 0)
    assert np.all(np.asarray(mu_child["out"]["kernel"])[6:] == 0)
    assert int(adam(child).count) == int(adam(parent).count) == 4
    trained = fitness(True)(key, child)
    assert int(adam(trained).count) == 8 and trained.fitness is not None


def test_a_new_kind_of_optimiser_or_a_lost_record_starts_fresh(key):
    parent = fitness(True)(key, ng.Candidate(graph(key), optimiser=ng.Adam(1e-2), batch_size=16))
    to_sgd = ng.MapCandidate(ng.OptimiserMutation([ng.SGD]))(key, parent)
    assert isinstance(to_sgd.optimiser, ng.SGD) and to_sgd.opt_state is None
    lr = ng.MapCandidate(ng.LearningRateMutation())(key, parent)
    assert lr.opt_state is parent.opt_state
    # a state that no longer fits the graph (made elsewhere) is not used: training starts fresh, as upstream
    stale = parent.replace(graph=ng.delta_nout(graph(jax.random.key(5)), {"d1": 1}))
    trained = fitness(True)(key, stale)
    assert int(adam(trained).count) == 4


def test_checkpoints_save_and_restore_the_kept_state_bit_for_bit(key, tmp_path):
    c = fitness(True)(key, ng.Candidate(graph(key), optimiser=ng.Adam(1e-2), batch_size=16))
    plain = ng.Candidate(graph(key), batch_size=16)  # no optimiser spec: nothing to rebuild a state from
    path = ng.save_population(tmp_path / "pop", ng.Population([c, plain]))
    loaded = ng.load_population(path)
    assert loaded[1].opt_state is None
    got, want = loaded[0].opt_state, c.opt_state
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)
    # training the loaded candidate equals training the original
    a, b = fitness(True)(key, loaded[0]), fitness(True)(key, c)
    for x, y in zip(jax.tree_util.tree_leaves(a.graph.params), jax.tree_util.tree_leaves(b.graph.params)):
        np.testing.assert_array_equal(x, y)


def test_keep_optimiser_state_must_be_a_bool():
    with pytest.raises(TypeError, match="keep_optimiser_state must be True or False, got 'yes'"):
        ng.TrainThenFitness((X, Y), fitness=score, keep_optimiser_state="yes")


def test_a_checkpoint_refuses_an_optimiser_it_cannot_hold(key, tmp_path):
    import optax

    c = ng.Candidate(graph(key), optimiser=optax.sgd(0.1), batch_size=16)
    with pytest.raises(TypeError, match="candidate 0's optimiser is GradientTransformationExtraArgs"):
        ng.save_population(tmp_path / "pop", ng.Population([c]))
    assert not (tmp_path / "pop").exists()
