"""Plain optax transformations as optimisers: training, compile-cache identity, tree-form updates, mutations."""

import jax
import numpy as np
import optax
import pytest
from train_helpers import blobs, leaves, mlp

import naivega_jax as ng
from naivega_jax.train import Optax

FEATURES = 13  # this file's own input width: its graphs share no executables with other files'


@pytest.fixture(scope="module")
def data():
    return blobs(96, FEATURES)


def _epoch_means(result, epochs):
    return result.losses.reshape(epochs, -1).mean(axis=1)


def test_plain_adamw_trains_and_loss_falls(data):
    x, y = data
    r = ng.train_graph(jax.random.key(1), mlp(8, FEATURES), x, y, optimiser=optax.adamw(1e-2), batch_size=16, epochs=6)
    means = _epoch_means(r, 6)
    assert r.steps == 36 and not r.nonfinite
    assert means[-1] < 0.6 * means[0], means


def test_plain_adam_matches_the_adam_spec(data):
    x, y = data
    g = mlp(8, FEATURES)
    kw = dict(batch_size=16, epochs=3, compile_tier="full")
    plain = ng.train_graph(jax.random.key(1), g, x, y, optimiser=optax.adam(1e-2), **kw)
    spec = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.Adam(1e-2), **kw)
    np.testing.assert_allclose(leaves(plain.graph), leaves(spec.graph), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain.losses, spec.losses, rtol=1e-5)


@pytest.mark.parametrize("transform", [optax.lamb(0.05, weight_decay=0.1), optax.adamw(0.05, weight_decay=0.5)])
def test_plain_transform_updates_the_parameter_tree_as_optax_does(data, transform):
    """One full-batch step equals optax applied by hand to the graph's parameter tree: LAMB's trust ratio is a
    per-array norm and both decay the weights, so a flattened or params-less update would differ."""
    x, y = data
    g = mlp(6, FEATURES)
    r = ng.train_graph(jax.random.key(1), g, x, y, optimiser=transform, batch_size=96, shuffle=False)

    def loss(params):
        return optax.softmax_cross_entropy_with_integer_labels(g.replace(params=params)(x), y).mean()

    grads = jax.grad(loss)(g.params)
    updates, _ = transform.update(grads, transform.init(g.params), g.params)
    expected = optax.apply_updates(g.params, updates)
    np.testing.assert_allclose(leaves(r.graph), leaves(g.replace(params=expected)), rtol=1e-5, atol=1e-6)
    assert np.abs(leaves(r.graph) - leaves(g)).max() > 1e-3


def test_same_optax_object_compiles_once_and_a_new_object_again(data):
    x, y = data
    g = mlp(7, FEATURES)
    t = optax.adamw(1e-3)
    first = ng.train_graph(jax.random.key(1), g, x, y, optimiser=t, batch_size=32)
    before = ng.train.engine_stats()["compiles"]
    second = ng.train_graph(jax.random.key(2), g, x, y, optimiser=t, batch_size=32)
    assert (first.compiles, second.compiles, second.cache_hits) == (1, 0, 1)
    assert ng.train.engine_stats()["compiles"] == before
    third = ng.train_graph(jax.random.key(2), g, x, y, optimiser=optax.adamw(1e-3), batch_size=32)
    assert third.compiles == 1


def test_a_key_makes_new_objects_share_one_compile(data):
    x, y = data
    g = mlp(9, FEATURES)
    a = Optax(optax.adamw(1e-3), key="adamw-1e-3")
    b = Optax(optax.adamw(1e-3), key="adamw-1e-3")
    assert a == b and hash(a) == hash(b) and a != Optax(optax.adamw(1e-3), key="other")
    assert Optax(a.transform) == Optax(a.transform) and Optax(a.transform) != Optax(optax.adamw(1e-3))
    first = ng.train_graph(jax.random.key(1), g, x, y, optimiser=a, batch_size=32)
    second = ng.train_graph(jax.random.key(1), g, x, y, optimiser=b, batch_size=32)
    assert (first.compiles, second.compiles) == (1, 0)
    np.testing.assert_array_equal(leaves(first.graph), leaves(second.graph))


def test_precompile_training_accepts_plain_optax(data):
    x, y = data
    g = mlp(10, FEATURES)
    t = optax.sgd(0.1)
    assert ng.train.precompile_training(g, x, y, optimiser=t, batch_size=32, compile_tier="full")
    assert ng.train_graph(jax.random.key(1), g, x, y, optimiser=t, batch_size=32, compile_tier="full").compiles == 0


def test_mutations_leave_plain_optax_unchanged(key):
    t = optax.adam(1e-3)
    wrapped = Optax(t, key="adam")
    for mutation in (
        ng.LearningRateMutation(),
        ng.OptimiserMutation([ng.SGD]),
        ng.OptimiserMutation(lambda o: o.with_learning_rate(2.0)),
        ng.AddOptimiserMutation(lambda o: ng.SGD(0.1)),
    ):
        assert mutation(key, t) is t
        assert mutation(key, wrapped) is wrapped
    sgd = ng.SGD(0.1)
    for crossover in (ng.OptimiserCrossover(), ng.LearningRateCrossover()):
        assert crossover(key, (t, sgd)) == (t, sgd)
        assert crossover(key, (sgd, wrapped)) == (sgd, wrapped)
    chain = ng.OptimiserChain(ng.Momentum(0.1), wrapped)
    mutated = ng.LearningRateMutation()(key, chain)
    assert mutated.optimisers[1] is wrapped and mutated.optimisers[0].learning_rate != 0.1
    a, b = ng.OptimiserCrossover()(key, (chain, ng.OptimiserChain(ng.SGD(0.2), ng.Adam(0.3))))
    assert a.optimisers == (ng.SGD(0.2), wrapped) and b.optimisers == (ng.Momentum(0.1), ng.Adam(0.3))


def test_train_fitness_trains_a_plain_optax_default_and_candidate(data):
    x, y = data
    g = mlp(8, FEATURES)
    score = lambda key, c: c.replace(fitness=ng.evaluate_accuracy(c.graph, x, y))
    f = ng.TrainThenFitness((x, y), fitness=score, default_optimiser=optax.sgd(0.3), epochs=3)
    trained = f(jax.random.key(1), ng.Candidate(g, batch_size=16))
    assert trained.fitness > 0.8 and trained.info["train_steps"] == 18
    own = f(jax.random.key(1), ng.Candidate(g, batch_size=16, optimiser=optax.sgd(0.0)))
    np.testing.assert_array_equal(leaves(own.graph), leaves(g))


def test_optax_spec_surface(key):
    wrapped = Optax(optax.adam(1e-3), key="adam")
    assert wrapped.skeleton() is wrapped and wrapped.to_optax() is wrapped.transform
    assert wrapped.with_learning_rate(0.5) is wrapped and np.isnan(wrapped.learning_rate)
    assert "key='adam'" in repr(wrapped)
    with pytest.raises(ValueError, match=r"Optax.*key=.adam.*JSON"):
        wrapped.to_dict()
    with pytest.raises(TypeError, match="transform must be an optax GradientTransformation"):
        Optax(ng.Adam())
    with pytest.raises(TypeError, match="key must be hashable"):
        Optax(optax.sgd(0.1), key=["a"])
    with pytest.raises(TypeError, match="optimiser must be"):
        ng.train_graph(key, mlp(3, FEATURES), *blobs(8, FEATURES), optimiser="adam")
