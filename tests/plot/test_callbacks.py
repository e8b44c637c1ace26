import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng

from .conftest import assert_png

# Three generations of four candidates; None, NaN and inf are invalid fitness values.
FITNESS = {
    1: [0.5, 0.25, None, 0.75],
    2: [0.75, 0.5, math.nan, math.inf],
    3: [1.0, 0.5, 0.75, 0.25],
}
BATCH = {1: [32, 64, 16, 128], 2: [32, 8, 16, 256], 3: [64, 64, 32, 16]}


class DuckPopulation(list):
    """Any iterable of candidates with a ``generation`` attribute is a population to the callbacks."""

    def __init__(self, cands, generation):
        super().__init__(cands)
        self.generation = generation


def population(graphs, gen, *, fitness=None, generation=True):
    fits = FITNESS[gen] if fitness is None else fitness
    cands = [
        ng.Candidate(graphs[i % 3], batch_size=BATCH[gen][i], fitness=f, generation=gen) for i, f in enumerate(fits)
    ]
    return ng.Population(cands, gen) if generation else cands


def test_plot_fitness_stores_best_and_mean_of_valid_values(tmp_path, graphs):
    cb = ng.PlotFitness(tmp_path)
    for gen in (1, 2, 3):
        path = cb(population(graphs, gen))
    assert path == tmp_path / "PlotFitness" / "fitness.png"
    assert cb.data == [
        {"generation": 1, "best": 0.75, "mean": 0.5, "size": 4, "invalid": 1},
        {"generation": 2, "best": 0.75, "mean": 0.625, "size": 4, "invalid": 2},
        {"generation": 3, "best": 1.0, "mean": 0.625, "size": 4, "invalid": 0},
    ]
    stored = json.loads((tmp_path / "PlotFitness" / "fitness.json").read_text())
    assert [r["best"] for r in stored["generations"]] == [0.75, 0.75, 1.0]
    assert_png(path)


def test_plot_fitness_all_invalid_gives_gap_not_error(tmp_path, graphs):
    cb = ng.PlotFitness(tmp_path)
    cb(population(graphs, 1))
    cb(population(graphs, 2, fitness=[None, math.nan]))
    cb(population(graphs, 3))
    assert cb.data[1] == {"generation": 2, "best": None, "mean": None, "size": 2, "invalid": 2}
    assert_png(cb.png_path)


def test_failed_evaluations_count_as_invalid(tmp_path, graphs):
    cands = population(graphs, 3, generation=False)
    cands[0] = cands[0].replace(fitness=0.0, info={"failure": "NaN loss"})
    cb = ng.PlotFitness(tmp_path)
    cb(DuckPopulation(cands, 7))
    assert cb.data == [{"generation": 7, "best": 0.75, "mean": 0.5, "size": 4, "invalid": 1}]


def test_array_fitness_values_are_stored_as_floats(tmp_path, graphs):
    cb = ng.PlotFitness(tmp_path)
    cb(population(graphs, 1, fitness=[jnp.float32(0.5), np.float64(0.25), jnp.array(1.0)]))
    assert cb.data[0]["best"] == 1.0 and type(cb.data[0]["best"]) is float
    assert cb.data[0]["mean"] == pytest.approx(1.75 / 3)


def test_new_callback_reloads_and_continues(tmp_path, graphs):
    first = ng.PlotFitness(tmp_path)
    first(population(graphs, 1))
    first(population(graphs, 2))
    resumed = ng.PlotFitness(tmp_path)
    assert resumed.data == first.data and resumed.generations == [1, 2]
    before = resumed.png_path.read_bytes()
    resumed(population(graphs, 3))
    assert [r["best"] for r in ng.PlotFitness(tmp_path).data] == [0.75, 0.75, 1.0]
    assert resumed.png_path.read_bytes() != before


def test_recalling_a_generation_replaces_its_points_and_drops_later_ones(tmp_path, graphs):
    cb = ng.ScatterPop(tmp_path)
    for gen in (1, 2, 3):
        cb(population(graphs, gen))
    cb(population(graphs, 2, fitness=[0.125, 0.25]))
    assert cb.generations == [1, 2]
    assert cb.data[1] == {"generation": 2, "nvertices": [2, 3], "fitness": [0.125, 0.25], "nparams": [18, 39]}
    assert ng.ScatterPop(tmp_path).data == cb.data
    cb(population(graphs, 2, fitness=[0.375]))
    assert cb.generations == [1, 2] and cb.data[1]["fitness"] == [0.375]


def test_without_a_generation_attribute_calls_are_counted_across_reloads(tmp_path, graphs):
    cb = ng.PlotFitness(tmp_path)
    cb(population(graphs, 1, generation=False))
    cb(population(graphs, 2, generation=False))
    resumed = ng.PlotFitness(tmp_path)
    resumed(population(graphs, 3, generation=False))
    assert resumed.generations == [1, 2, 3]
    assert [r["mean"] for r in resumed.data] == [0.5, 0.625, 0.625]


def test_scatter_pop_stores_vertices_fitness_and_params(tmp_path, graphs):
    cb = ng.ScatterPop(tmp_path)
    for gen in (1, 2, 3):
        cb(population(graphs, gen))
    assert cb.data[0] == {
        "generation": 1,
        "nvertices": [2, 3, 4, 2],
        "fitness": [0.5, 0.25, None, 0.75],
        "nparams": [18, 39, 147, 18],
    }
    assert cb.data[1]["fitness"] == [0.75, 0.5, None, None]
    assert cb.data[2]["fitness"] == [1.0, 0.5, 0.75, 0.25]
    assert_png(tmp_path / "ScatterPop" / "scatterpop.png")


def test_scatter_batch_size_stores_batch_size_fitness_and_params(tmp_path, graphs):
    cb = ng.ScatterBatchSize(tmp_path)
    for gen in (1, 2, 3):
        cb(population(graphs, gen))
    assert [r["batch_size"] for r in cb.data] == [BATCH[1], BATCH[2], BATCH[3]]
    assert cb.data[2] == {"generation": 3, "batch_size": [64, 64, 32, 16], "fitness": FITNESS[3],
                          "nparams": [18, 39, 147, 18]}  # fmt: skip
    assert_png(tmp_path / "ScatterBatchSize" / "scatterbatchsize.png")


def test_scatter_opt_reads_learning_rate_and_first_unshielded_type(tmp_path, graphs):
    opts = [
        ng.Adam(1e-3),
        ng.OptimiserChain(ng.ShieldedOpt(ng.SGD(0.1)), ng.WeightDecay(1e-4), ng.Adam(0.01)),
        ng.ShieldedOpt(ng.Momentum(0.5)),
        None,
        ng.OptimiserChain(ng.ShieldedOpt(ng.SGD(0.5)), ng.ShieldedOpt(ng.Adam(0.5))),
        ng.OptimiserChain(ng.WeightDecay(1e-4), ng.ShieldedOpt(ng.Nesterov(0.25))),
    ]
    cands = [ng.Candidate(graphs[0], optimiser=o, fitness=0.25 * i) for i, o in enumerate(opts)]
    cb = ng.ScatterOpt(tmp_path)
    cb(ng.Population(cands, 1))
    cb(ng.Population([cands[0].replace(optimiser=ng.WeightDecay(1e-3))], 2))
    assert cb.data[1]["optimiser"] == ["WeightDecay"] and cb.data[1]["learning_rate"] == [1.0]
    record = cb.data[0]
    assert record["optimiser"] == ["Adam", "Adam", "Momentum", "default", "SGD", "Nesterov"]
    lrs = record["learning_rate"]
    assert lrs[3] is None  # no optimiser spec: the fitness strategy's default, learning rate unknown
    assert lrs[:3] + lrs[4:] == pytest.approx([1e-3, 0.1 * 0.01, 0.5, 0.25, 0.25], rel=1e-12)
    assert record["fitness"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


def test_scatter_opt_three_generations_png(tmp_path, graphs):
    cb = ng.ScatterOpt(tmp_path)
    kinds = [ng.Adam, ng.SGD]
    for gen in (1, 2, 3):
        cands = [
            ng.Candidate(graphs[0], optimiser=kinds[i % 2](10.0 ** -(i + gen)), fitness=f)
            for i, f in enumerate(FITNESS[gen])
        ]
        cb(ng.Population(cands, gen))
    assert cb.data[2]["learning_rate"] == pytest.approx([1e-3, 1e-4, 1e-5, 1e-6])
    assert cb.data[2]["optimiser"] == ["Adam", "SGD", "Adam", "SGD"]
    assert_png(tmp_path / "ScatterOpt" / "scatteropt.png")


def test_plot_best_graph_stores_the_best_spec(tmp_path, graphs):
    cb = ng.plot.PlotBestGraph(tmp_path)
    for gen in (1, 2, 3):
        cb(population(graphs, gen))
    assert [(r["generation"], r["fitness"], r["nparams"]) for r in cb.data] == [(1, 0.75, 18), (2, 0.75, 18),
                                                                              (3, 1.0, 18)]  # fmt: skip
    assert ng.graph.from_json(cb.data[2]["spec"]) == graphs[0].spec
    assert cb(population(graphs, 1, fitness=[None, math.nan])) is None
    assert cb.generations == [1, 2, 3]
    assert_png(cb.png_path)


def test_multiplot_writes_one_figure_and_each_callback_its_own(tmp_path, graphs):
    cbs = [
        ng.PlotFitness(tmp_path),
        ng.ScatterPop(tmp_path),
        ng.ScatterOpt(tmp_path),
        ng.ScatterBatchSize(tmp_path),
    ]
    mp = ng.MultiPlot(*cbs)
    for gen in (1, 2, 3):
        path = mp(population(graphs, gen))
    assert path == tmp_path / "MultiPlot" / "multiplot.png"
    img = assert_png(path)
    single = assert_png(tmp_path / "PlotFitness" / "fitness.png")
    assert img.shape[0] > single.shape[0] and img.shape[1] > single.shape[1]
    assert all(cb.generations == [1, 2, 3] for cb in cbs)
    assert ng.PlotFitness(tmp_path).data[2]["best"] == 1.0


def test_multiplot_needs_a_path_without_a_shared_rootdir(tmp_path):
    with pytest.raises(ValueError, match="path"):
        ng.MultiPlot(ng.PlotFitness(tmp_path / "a"), ng.PlotFitness(tmp_path / "b"))
    mp = ng.MultiPlot(ng.PlotFitness(tmp_path / "a"), ng.PlotFitness(tmp_path / "b"), path=tmp_path / "m.png")
    assert mp.path == tmp_path / "m.png"
    with pytest.raises(TypeError, match="draw"):
        ng.MultiPlot(lambda pop: None, path=tmp_path / "m.png")
    with pytest.raises(ValueError, match="at least one"):
        ng.MultiPlot()


def test_plot_run_regenerates_every_png(tmp_path, graphs):
    mp = ng.MultiPlot(ng.PlotFitness(tmp_path), ng.ScatterPop(tmp_path))
    cb = ng.CbAll(mp, ng.ScatterOpt(tmp_path), ng.ScatterBatchSize(tmp_path), ng.plot.PlotBestGraph(tmp_path))
    for gen in (1, 2, 3):
        cb(population(graphs, gen))
    pngs = sorted(tmp_path.rglob("*.png"))
    assert [p.relative_to(tmp_path).as_posix() for p in pngs] == [
        "MultiPlot/multiplot.png",
        "PlotBestGraph/best_graph.png",
        "PlotFitness/fitness.png",
        "ScatterBatchSize/scatterbatchsize.png",
        "ScatterOpt/scatteropt.png",
        "ScatterPop/scatterpop.png",
    ]
    for p in pngs:
        p.unlink()
    written = ng.plot.plot_run(tmp_path)
    assert sorted(written) == pngs
    for p in pngs:
        assert_png(p)


def test_plot_run_on_empty_and_missing_directories(tmp_path):
    assert ng.plot.plot_run(tmp_path) == []
    with pytest.raises(ValueError, match="not a directory"):
        ng.plot.plot_run(tmp_path / "missing")


def test_cb_all_calls_each_in_order(graphs):
    seen = []
    pop = population(graphs, 1)
    ng.CbAll(lambda p: seen.append(("a", p.generation)), lambda p: seen.append(("b", len(p))))(pop)
    assert seen == [("a", 1), ("b", 4)]
    with pytest.raises(TypeError, match="callable"):
        ng.CbAll(3)


def test_bad_input_errors(tmp_path, graphs):
    cb = ng.PlotFitness(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        cb([])
    with pytest.raises(TypeError, match="iterable"):
        cb(3)
    with pytest.raises(TypeError, match="'fitness'"):
        cb([object()])
    with pytest.raises(TypeError, match="generation"):
        cb(DuckPopulation([ng.Candidate(graphs[0])], "2"))
    with pytest.raises(ValueError, match=">= 1"):
        cb(DuckPopulation([ng.Candidate(graphs[0])], 0))
    with pytest.raises(TypeError, match="rootdir"):
        ng.PlotFitness(None)
    assert not (tmp_path / "PlotFitness").exists()


def test_unreadable_stored_data_is_reported_with_its_path(tmp_path):
    path = tmp_path / "ScatterPop" / "nvfitnp.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"nvfitnp\.json"):
        ng.ScatterPop(tmp_path)
    path.write_text(json.dumps({"format": "naivega_jax.plot/1", "callback": "ScatterOpt", "generations": []}))
    with pytest.raises(ValueError, match="callback 'ScatterOpt'"):
        ng.ScatterPop(tmp_path)
