import dataclasses
import logging
import operator
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng


def dense_graph(nin=2, nout=3, key=0):
    inp = ng.input_vertex("in", shape=(nin,))
    return ng.build_graph(jax.random.key(key), inputs=inp, outputs=ng.vertex("d", ng.Dense(nout), inp))


def identity_graph(n=2):
    g = dense_graph(n, n)
    return g.replace(params={"d": {"kernel": jnp.eye(n), "bias": jnp.zeros(n)}})


@dataclasses.dataclass(frozen=True)
class Const:
    value: float

    def __call__(self, key, candidate):
        return candidate.replace(fitness=self.value)


@dataclasses.dataclass(frozen=True)
class Sleep:
    seconds: float

    def __call__(self, key, candidate):
        time.sleep(self.seconds)
        return candidate.replace(fitness=1.0)


def test_accuracy_three_of_six_over_two_batches_is_half(key):
    # check 36: 2 batches, 3 of 6 correct
    x = np.array([[1.0, 0], [0, 1], [1, 0], [0, 1], [1, 0], [0, 1]])
    y = np.array([0, 1, 1, 0, 0, 0])
    f = ng.AccuracyFitness((x, y), batch_size=3)
    assert len(f._batches) == 2
    assert f(key, ng.Candidate(identity_graph())).fitness == 0.5


def test_accuracy_one_hot_labels_and_ignored_negative_labels(key):
    x = np.array([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    one_hot = np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    assert ng.AccuracyFitness((x, one_hot))(key, ng.Candidate(identity_graph())).fitness == 0.5
    labels = np.array([0, -1, -1, 1])
    assert ng.AccuracyFitness((x, labels))(key, ng.Candidate(identity_graph())).fitness == 1.0


def test_accuracy_of_empty_data_is_zero(key):
    f = ng.AccuracyFitness((np.zeros((0, 2)), np.zeros(0, int)))
    assert f(key, ng.Candidate(identity_graph())).fitness == 0.0


def test_accuracy_compiles_once_per_spec_whatever_the_partial_batch(key):
    g = identity_graph(5)  # a spec no other test uses
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    y = np.argmax(x, axis=1)
    f = ng.AccuracyFitness((x, y), batch_size=3)  # batches 3, 3, 1 padded to 3
    before = ng.train.engine_stats()["compiles"]  # AccuracyFitness compiles through the training engine's cache
    assert f(key, ng.Candidate(g)).fitness == 1.0
    assert ng.train.engine_stats()["compiles"] == before + 1
    other_params = g.replace(params={"d": {"kernel": -jnp.eye(5), "bias": jnp.zeros(5)}})
    f(key, ng.Candidate(other_params))
    assert ng.train.engine_stats()["compiles"] == before + 1


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        ng.AccuracyFitness((np.zeros((2, 2)), np.zeros(2, int)), batch_size=0)
    with pytest.raises(TypeError, match="pair"):
        ng.AccuracyFitness(np.zeros((2, 2)))
    with pytest.raises(ng.ShapeError, match="3 labels"):
        ng.AccuracyFitness((np.zeros((2, 2)), np.zeros(3, int)))


def test_accuracy_needs_a_single_output_graph(key):
    inp = ng.input_vertex("in", shape=(2,))
    a, b = ng.vertex("a", ng.Dense(2), inp), ng.vertex("b", ng.Dense(2), inp)
    g = ng.build_graph(key, inputs=inp, outputs=[a, b])
    with pytest.raises(ValueError, match="one output"):
        ng.AccuracyFitness((np.zeros((2, 2)), np.zeros(2, int)))(key, ng.Candidate(g))


def test_size_of_dense_2_3_is_9(key):
    assert ng.SizeFitness()(key, ng.Candidate(dense_graph(2, 3))).fitness == 9


def test_agg_fitness_13_and_a_twelfth(key):
    # check 36: Dense(ones(3, 3), bias 1:3) scores accuracy 1 on labels 2, size 12
    g = dense_graph(3, 3).replace(params={"d": {"kernel": jnp.ones((3, 3)), "bias": jnp.array([1.0, 2, 3])}})
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    acc = ng.AccuracyFitness((x, np.full(5, 2)))
    inverse = ng.MapFitness(lambda n: 1.0 if n == 0 else min(1.0, 1 / n), ng.SizeFitness())
    f = ng.AggFitness(operator.add, acc, inverse, ng.SizeFitness())
    assert f(key, ng.Candidate(g)).fitness == pytest.approx(13 + 1 / 12)
    # a parameter-free graph: accuracy 0, min(1, 1/0) = 1, size 0
    inp = ng.input_vertex("in", shape=(3,))
    free = ng.build_graph(key, inputs=inp, outputs=ng.add("a", inp, inp))
    acc0 = ng.AccuracyFitness((np.array([[1.0, 0, 0]]), np.array([1])))
    assert ng.AggFitness(operator.add, acc0, inverse, ng.SizeFitness())(key, ng.Candidate(free)).fitness == 1


def test_agg_fitness_needs_a_fitness():
    with pytest.raises(ValueError, match="at least one fitness"):
        ng.AggFitness(operator.add)


def test_ewma_fitness_numbers(key):
    # check 36: base 20 with previous 10 gives 15, with previous 15 gives 17.5, without previous 20
    g = dense_graph()
    f = ng.EwmaFitness(Const(20.0))
    assert f(key, ng.Candidate(g, fitness=10.0)).fitness == 15.0
    assert f(key, ng.Candidate(g, fitness=15.0)).fitness == 17.5
    assert f(key, ng.Candidate(g)).fitness == 20.0
    # a new candidate uses its parent's last fitness
    assert f(key, ng.Candidate(g, info={"parent_fitness": 10.0})).fitness == 15.0
    assert ng.EwmaFitness(Const(20.0), alpha=0.25)(key, ng.Candidate(g, fitness=10.0)).fitness == 17.5


def test_ewma_inside_agg_sees_the_incoming_fitness(key):
    f = ng.AggFitness(operator.add, Const(1.0), ng.EwmaFitness(Const(20.0)))
    assert f(key, ng.Candidate(dense_graph(), fitness=10.0)).fitness == 16.0


def test_map_fitness(key):
    assert ng.MapFitness(lambda v: 2 * v, ng.SizeFitness())(key, ng.Candidate(dense_graph())).fitness == 18


def test_time_fitness_keeps_the_value_and_records_the_time(key):
    c = ng.TimeFitness(Sleep(0.05))(key, ng.Candidate(dense_graph()))
    assert c.fitness == 1.0
    assert 0.05 <= c.info["time"] < 1.0
    combined = ng.TimeFitness(Sleep(0.05), combine=lambda elapsed, value: (elapsed, value))
    elapsed, value = combined(key, ng.Candidate(dense_graph())).fitness
    assert value == 1.0 and 0.05 <= elapsed < 1.0


def test_log_fitness_logs_one_line(key, caplog):
    with caplog.at_level(logging.INFO, logger="naivega_jax"):
        c = ng.evolution.LogFitness(ng.SizeFitness())(key, ng.Candidate(dense_graph()))
    assert c.fitness == 9
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "vertices:   2" in msg and "params:  0.01k" in msg and "fitness: 9" in msg


def test_sizevs_numbers():
    # check 37
    assert ng.evolution.sizevs(0.12345678, 1, digits=2) == pytest.approx(0.121, abs=1e-12)
    assert ng.evolution.sizevs(0.12345678, 100_000, digits=2) == pytest.approx(0.12001, abs=1e-12)
    assert ng.evolution.sizevs(0.12345678, 1, digits=3) == pytest.approx(0.1231, abs=1e-12)
    assert ng.evolution.sizevs(0.12345678, 100_000, digits=3) == pytest.approx(0.12301, abs=1e-12)


def test_accuracy_vs_size(key):
    x = np.array([[1.0, 0], [0, 1], [1, 0]])
    f = ng.evolution.AccuracyVsSize((x, np.array([0, 1, 1])), digits=2)
    # accuracy 2/3 rounds to 0.67; 6 parameters: min(1e-3, 1/6) = 1e-3
    assert f(key, ng.Candidate(identity_graph())).fitness == pytest.approx(0.671)


def test_fitnesses_are_frozen_comparable_and_hashable():
    assert ng.SizeFitness() == ng.SizeFitness()
    assert ng.EwmaFitness(ng.SizeFitness()) == ng.EwmaFitness(ng.SizeFitness(), 0.5)
    assert len({ng.SizeFitness(), ng.SizeFitness(), ng.MapFitness(abs, ng.SizeFitness())}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        ng.EwmaFitness(ng.SizeFitness()).alpha = 0.1
    with pytest.raises(ValueError, match="alpha"):
        ng.EwmaFitness(ng.SizeFitness(), alpha=2)
    assert "5 labels" in repr(ng.AccuracyFitness((np.zeros((5, 2)), np.zeros(5, int))))
