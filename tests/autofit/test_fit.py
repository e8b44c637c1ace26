import json

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import RunDirectoryError


def _data(n=150):
    x, y, _, _ = ng.datasets.load("digits")
    return x[:n], y[:n]


def _space(nclasses=10):
    conv = ng.VertexSpace(ng.ConvSpace(outsizes=[4, 6], kernel_sizes=[3], activations=["relu", "elu"]))
    head = ng.VertexSpace(ng.DenseSpace(nclasses, "identity"), shielded=("ActivationFunctionMutation",))
    return ng.ArchSpaceChain(conv, ng.GlobalPoolSpace(), head)


def _fit(out_dir, **kwargs):
    x, y = _data()
    settings = {
        "key": jax.random.key(3),
        "out_dir": out_dir,
        "population_size": 3,
        "space": _space(),
    }
    settings["progress"] = False
    settings.update(kwargs)
    return ng.autofit.fit(x, y, **settings)


def _assert_same(a, b):
    assert a.generation == b.generation
    assert [c.fitness for c in a] == [c.fitness for c in b]
    for x, y in zip(a, b):
        assert x.graph.spec == y.graph.spec and x.optimiser == y.optimiser and x.batch_size == y.batch_size
        for u, v in zip(
            jax.tree_util.tree_leaves(x.graph),
            jax.tree_util.tree_leaves(y.graph),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_fit_runs_checkpoints_and_writes_the_best(tmp_path):
    seen = []
    pop = _fit(
        tmp_path / "run",
        max_generations=2,
        callbacks=[lambda p: seen.append(p.generation)],
    )
    assert pop.generation == 2 and len(pop) == 3 and seen == [1, 2]
    fitnesses = [c.fitness for c in pop]
    assert fitnesses == sorted(fitnesses, reverse=True) and all(0.0 <= f <= 1.01 for f in fitnesses)
    # the best of generation 2 is on disk, with its lineage since generation 1, and computes what it computed
    best = ng.load_graph(tmp_path / "run" / "best" / "graph")
    x, _ = _data(8)
    np.testing.assert_allclose(np.asarray(best(x)), np.asarray(pop[0].graph(x)), atol=1e-6)
    lineage = json.loads((tmp_path / "run" / "best" / "lineage.json").read_text())
    assert lineage["lineage"][0]["event"] == "created" and lineage["fitness"] == pop[0].fitness
    assert [e["generation"] for e in lineage["lineage"] if e["event"] == "fitness"][-1] == 2
    assert (tmp_path / "run" / "best" / "graph.png").stat().st_size > 1000
    _assert_same(ng.autofit.fit.__globals__["_sorted"](ng.load_population(tmp_path / "run")), pop)


def test_resume_reaches_the_uninterrupted_population(tmp_path):
    straight = _fit(tmp_path / "a", max_generations=3)
    _fit(tmp_path / "b", max_generations=1)
    _fit(tmp_path / "b", max_generations=2)
    resumed = _fit(tmp_path / "b", max_generations=3)
    _assert_same(straight, resumed)


def test_time_budget_stops_between_candidates_and_resume_completes_the_generation(
    tmp_path,
):
    straight = _fit(tmp_path / "a", max_generations=1)
    partial = _fit(tmp_path / "b", max_generations=1, time_budget=1e-9)
    # nothing was evaluated: the deadline had passed before the first candidate
    assert all(c.fitness is None for c in partial)
    _, _, extra, _ = ng.io.load_run_checkpoint(tmp_path / "b")
    assert extra["complete"] is False and extra["evaluated"] == [] and extra["totals"]["evaluations"] == 0
    _assert_same(straight, _fit(tmp_path / "b", max_generations=1))


def test_compiling_ahead_changes_nothing_but_the_waiting(tmp_path):
    ng.train.clear_compile_cache(jax_caches=False)
    before = ng.train.engine_stats()["background_compiles"]
    ahead = _fit(tmp_path / "a", max_generations=2, epochs_per_generation=1)  # precompile: on (no executor)
    assert ng.train.engine_stats()["background_compiles"] > before
    ng.train.clear_compile_cache(jax_caches=False)
    before = ng.train.engine_stats()["background_compiles"]
    plain = _fit(tmp_path / "b", max_generations=2, epochs_per_generation=1, precompile=False)
    assert ng.train.engine_stats()["background_compiles"] == before
    _assert_same(ahead, plain)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        (np.zeros((10,)), np.zeros(10), {}, r"x must have shape"),
        (np.zeros((10, 4)), np.zeros(9), {}, r"y must be a vector of 10 labels"),
        (np.full((10, 4), np.nan), np.arange(10) % 2, {}, r"NaN or Inf"),
        (np.zeros((10, 4)), np.arange(10) % 2 + 0.5, {}, r"integer class labels"),
        (np.zeros((10, 4)), np.zeros(10), {}, r"at least 2 classes"),
        (np.zeros((0, 4)), np.zeros(0), {}, r"x is empty"),
        (
            np.zeros((20, 4)),
            np.r_[np.arange(18) % 2, [0, 0]],
            {"validation_split": 0.1},
            r"no example of classes \[1\]",
        ),
        (
            np.zeros((20, 4)),
            np.arange(20) % 2,
            {"population_size": 2},
            r"population_size must be an int >= 3, got 2",
        ),
        (
            np.zeros((20, 4)),
            np.arange(20) % 2,
            {"max_generations": 0},
            r"max_generations must be an int >= 1, got 0",
        ),
        (
            np.zeros((20, 4)),
            np.arange(20) % 2,
            {"time_budget": -5},
            r"time_budget must be None or .* got -5",
        ),
        (
            np.zeros((20, 4)),
            np.arange(20) % 2,
            {"validation_split": 1.5},
            r"validation_split must be in \(0, 1\), got 1.5",
        ),
        (
            np.zeros((20, 4)),
            np.arange(20) % 2,
            {"callbacks": [3]},
            r"callbacks\[0\] must be callable",
        ),
        (
            np.zeros((20, 4)),
            np.arange(20) % 2,
            {"precompile": "yes"},
            r"precompile must be None or a bool, got 'yes'",
        ),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, x, y, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ng.autofit.fit(
            x,
            y,
            key=jax.random.key(0),
            out_dir=tmp_path / "run",
            progress=False,
            **kwargs,
        )
    assert not (tmp_path / "run").exists()


def test_out_dir_of_something_else_is_refused(tmp_path):
    x, y = _data()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not empty and holds no naivega_jax run"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "run.json").write_text(json.dumps({"format": "naivega_jax.run/1", "in_shape": [4]}))
    with pytest.raises(RunDirectoryError, match=r"in_shape=\[4\]"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "other", progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_graph_crossover_swaps_trained_segments_in_a_fit_run(tmp_path):
    """Upstream's VertexCrossover(CrossoverSwap) in the default evolution (here always applied): children carry
    vertices of both parents, and the swap in their lineage."""
    conv = ng.VertexSpace(ng.ConvSpace(outsizes=[4, 6], kernel_sizes=[3], activations=["relu", "elu"]))
    head = ng.VertexSpace(ng.DenseSpace(10, "identity"), shielded=("ActivationFunctionMutation",))
    space = ng.ArchSpaceChain(ng.RepeatArchSpace(conv, [2, 3]), ng.GlobalPoolSpace(), head)
    evolution = ng.autofit.default_evolution(4, (8, 8, 1), nelites=1, pcrossover=1.0, pmutate=0.0, pswap=1.0)
    out = tmp_path / "run"
    # unscreened: with a screen, generation 2 is the screen's best, unchanged, and crossover starts at 3
    first = _fit(out, population_size=4, max_generations=1, space=space, epochs_per_generation=1, screening=1)
    trained = {n: c.graph.params[n] for c in first for n in c.graph.vertex_names if c.graph.params.get(n)}
    pop = _fit(
        out,
        population_size=4,
        max_generations=2,
        space=space,
        evolution=evolution,
        epochs_per_generation=1,
        screening=1,
    )
    mixed = [c for c in pop if len({n.split(".")[0] for n in c.graph.vertex_names if n != "in"}) > 1]
    assert mixed, [c.graph.vertex_names for c in pop]
    for c in mixed:
        event = next(e for e in c.lineage if e["event"] == "crossover")
        assert any(e["mutation"] == "CrossoverSwap" and all(e["success"]) for e in event["events"])
        assert event["changes"]["graph"]["added"]
        assert {n.split(".")[0] for n in event["changes"]["graph"]["added"]} != {c.graph.output_names[0].split(".")[0]}
    # the swapped-in vertices are trained vertices of generation 1's other members, not new ones
    added = [n for c in mixed for e in c.lineage if e["event"] == "crossover" for n in e["changes"]["graph"]["added"]]
    assert added and all(n in trained for n in added)
