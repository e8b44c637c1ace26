"""Compiling ahead of need: precompile_training, the cache's hand-over between threads, evaluate(precompile=True)."""

import threading

import jax
import numpy as np
from train_helpers import blobs, leaves, mlp

import naivega_jax as ng

FEATURES = 5


def test_precompiled_training_compiles_nothing_and_trains_the_same():
    x, y = blobs(64, FEATURES)
    kw = dict(optimiser=ng.Momentum(0.05), batch_size=12, epochs=2)
    before = ng.train.engine_stats()
    assert ng.train.precompile_training(mlp(41, FEATURES), x, y, **kw) is True
    after = ng.train.engine_stats()
    assert after["background_compiles"] == before["background_compiles"] + 1
    assert after["compiles"] == before["compiles"] + 1
    assert after["compile_seconds"] == before["compile_seconds"]  # nobody waited
    assert ng.train.precompile_training(mlp(41, FEATURES), x, y, **kw) is False
    r = ng.train_graph(jax.random.key(0), mlp(41, FEATURES), x, y, **kw)
    assert r.compiles == 0 and r.cache_hits == 1 and r.compile_seconds < 0.5
    ng.train.clear_compile_cache(jax_caches=False)
    cold = ng.train_graph(jax.random.key(0), mlp(41, FEATURES), x, y, **kw)
    assert cold.compiles == 1
    np.testing.assert_array_equal(leaves(cold.graph), leaves(r.graph))
    np.testing.assert_array_equal(cold.losses, r.losses)


def test_a_trainer_waits_for_the_compile_in_flight_instead_of_compiling_twice():
    x, y = blobs(64, FEATURES, seed=1)
    kw = dict(optimiser=ng.Adam(1e-2), batch_size=8, epochs=1, compile_tier="full")
    before = ng.train.engine_stats()["compiles"]
    ahead = threading.Thread(target=ng.train.precompile_training, args=(mlp(43, FEATURES), x, y), kwargs=kw)
    ahead.start()
    r = ng.train_graph(jax.random.key(0), mlp(43, FEATURES), x, y, **kw)
    ahead.join()
    assert ng.train.engine_stats()["compiles"] == before + 1  # one compile, whichever thread got there first
    assert r.steps == 8 and np.isfinite(r.losses).all()


def test_evaluate_with_precompile_scores_exactly_as_without():
    x, y = blobs(96, FEATURES, seed=2)
    members = [ng.Candidate(mlp(h, FEATURES, seed=h), optimiser=ng.Adam(1e-2), batch_size=16) for h in (45, 46, 47, 45)]
    fitness = ng.TrainThenFitness((x[:64], y[:64]), fitness=ng.AccuracyFitness((x[64:], y[64:])), epochs=4)
    results = {}
    for precompile in (True, False):
        ng.train.clear_compile_cache(jax_caches=False)
        before = ng.train.engine_stats()
        results[precompile] = ng.evolution.evaluate(
            jax.random.key(5), fitness, ng.Population(members), precompile=precompile
        )
        background = ng.train.engine_stats()["background_compiles"] - before["background_compiles"]
        compiles = ng.train.engine_stats()["compiles"] - before["compiles"]
        # 3 distinct specs, each with a training step and an evaluation executable
        assert compiles == 6
        assert (background >= 1) if precompile else (background == 0)
    with_, without = results[True], results[False]
    assert with_.fitnesses == without.fitnesses and all(f > 0.7 for f in with_.fitnesses)
    for a, b in zip(with_, without):
        np.testing.assert_array_equal(leaves(a.graph), leaves(b.graph))


def test_a_member_that_cannot_be_precompiled_is_still_scored_with_its_reason():
    x, y = blobs(64, FEATURES, seed=3)
    good = ng.Candidate(mlp(49, FEATURES), optimiser=ng.Adam(1e-2), batch_size=16)
    inp = ng.input_vertex("in", shape=(4,))  # the wrong input width for the data
    bad = ng.Candidate(ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("o", ng.Dense(3), inp)))
    fitness = ng.TrainThenFitness((x, y), fitness=ng.AccuracyFitness((x, y)), epochs=5)
    pop = ng.evolution.evaluate(jax.random.key(0), fitness, ng.Population([bad, good]), precompile=True)
    assert pop[0].fitness == 0.0 and "input 'in' must have shape (n, 4)" in pop[0].info["failure"]
    assert pop[1].fitness > 0.5 and "failure" not in pop[1].info
