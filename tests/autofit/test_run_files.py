"""A tiny real run of ``fit`` on digits: every file it writes is there and valid, and a resume continues it."""

import json
import logging
import shutil
import time

import jax
import matplotlib.image
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import RunProgress, format_duration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = (ng.PlotFitness, ng.ScatterPop, ng.ScatterOpt, ng.ScatterBatchSize)


def _space(nclasses=10):
    conv = ng.VertexSpace(ng.ConvSpace(outsizes=[4, 6], kernel_sizes=[3], activations=["relu", "elu"]))
    head = ng.VertexSpace(ng.DenseSpace(nclasses, "identity"), shielded=("ActivationFunctionMutation",))
    return ng.ArchSpaceChain(conv, ng.GlobalPoolSpace(), head)


def _digits(n=300):
    x, y, xt, yt = ng.datasets.load("digits")
    return x[:n], y[:n], (xt[:100], yt[:100])


def _assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100 and image.shape[2] in (3, 4)
    assert float(np.ptp(image[..., :3])) > 0.1, f"{path} is blank"


class _Noisy:
    """A callback that logs a warning as a mutation would, to check that warnings reach the run's log."""

    def __call__(self, population):
        logging.getLogger("naivega_jax.mutation").warning("test warning after generation %d", population.generation)


def _run(out, generations):
    x, y, test = _digits()
    callbacks = [cls(out / "plots") for cls in PLOTS]
    return ng.autofit.fit(
        x,
        y,
        key=jax.random.key(5),
        out_dir=out,
        population_size=4,
        max_generations=generations,
        space=_space(),
        epochs_per_generation=2,
        callbacks=[*callbacks, _Noisy()],
        test_data=test,
        progress=False,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "run"
    return out, _run(out, 2)


def test_a_tiny_fit_writes_every_file_valid(run):
    out, pop = run
    assert pop.generation == 2 and len(pop) == 4
    info = json.loads((out / "run.json").read_text())
    assert info["format"] == "naivega_jax.run/1" and info["in_shape"] == [8, 8, 1] and info["n_train"] == 270
    # the checkpoint: the whole scored generation 2, its key, marked complete, with the time tallies
    stored, key, extra, path = ng.io.load_run_checkpoint(out)
    assert path.name == "gen_000002" and stored.generation == 2 and len(stored) == 4 and key is not None
    assert (
        extra["complete"] and extra["evaluated"] == [0, 1, 2, 3] and extra["totals"]["evaluations"] == 12 + 4
    )  # the screen: 3 x 4
    assert sorted(c.fitness for c in stored) == sorted(c.fitness for c in pop)
    # the best model, its lineage since generation 1 and its picture
    best = ng.load_graph(out / "best" / "graph")
    x, _, _ = _digits(16)
    np.testing.assert_allclose(np.asarray(best(x)), np.asarray(pop[0].graph(x)), atol=1e-5)
    lineage = json.loads((out / "best" / "lineage.json").read_text())
    assert lineage["fitness"] == pop[0].fitness and lineage["lineage"][0]["event"] == "created"
    assert [e["generation"] for e in lineage["lineage"] if e["event"] == "fitness"] == [1, 2]
    _assert_png(out / "best" / "graph.png")
    # the plots: a PNG and one record per generation each
    for cls in PLOTS:
        cb = cls(out / "plots")
        _assert_png(cb.png_path)
        assert cb.generations == [1, 2]
    # the log: every progress line, the warnings, the summary
    log = (out / "run.log").read_text()
    start = "starting a run in " + str(out) + ": 270 training and 30 validation examples of shape (8, 8, 1), 10 classes"
    for text in (
        start,
        "Begin generation 1",
        "gen 1 candidate 12/12",
        "gen 2 candidate 4/4",
        "generation 2: best",
        "Summary of",
    ):
        assert text in log
    assert "WARNING naivega_jax.mutation: test warning after generation 2" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == "max_generations" and summary["best"]["fitness"] == pop[0].fitness
    assert 0.0 <= summary["best"]["test_accuracy"] <= 1.0 and summary["best"]["test_examples"] == 100
    assert summary["session"]["evaluations"] == 12 + 4 and summary["engine"]["compiles"] >= 1


def test_resume_adds_a_generation_and_the_plots_span_three(run, tmp_path):
    out, _ = run
    resumed_dir = tmp_path / "run"
    shutil.copytree(out, resumed_dir)
    pop = _run(resumed_dir, 3)
    assert pop.generation == 3 and ng.load_population(resumed_dir).generation == 3
    for cls in PLOTS:
        assert cls(resumed_dir / "plots").generations == [1, 2, 3]
    fitness = ng.PlotFitness(resumed_dir / "plots").data
    assert [r["generation"] for r in fitness] == [1, 2, 3]
    log = (resumed_dir / "run.log").read_text()
    assert log.startswith((out / "run.log").read_text())  # appended, not replaced
    assert "resuming a run in" in log and "generation 2 was scored; evolving it" in log and "Begin generation 3" in log
    summary = json.loads((resumed_dir / "summary.json").read_text())
    assert summary["session"]["evaluations"] == 4 and summary["totals"]["evaluations"] == 20
    assert summary["totals"]["wall_seconds"] > summary["session"]["wall_seconds"]
    lineage = json.loads((resumed_dir / "best" / "lineage.json").read_text())
    assert [e["generation"] for e in lineage["lineage"] if e["event"] == "fitness"][-1] == 3


def test_progress_lines_and_summary_on_stderr(tmp_path, capsys):
    """Progress on stderr (plain lines: stderr is no terminal here) and the summary with the test accuracy; the time
    split adds up."""
    x, y, test = _digits()
    pop = ng.autofit.fit(
        x,
        y,
        key=jax.random.key(0),
        out_dir=tmp_path / "run",
        population_size=3,
        max_generations=1,
        space=_space(),
        epochs_per_generation=2,
        test_data=test,
    )
    err = capsys.readouterr().err
    assert "\x1b[K" not in err
    assert "gen 1 candidate 9/9: fitness" in err and "ETA" in err and "compile" in err  # the screen: 3 x 3
    assert "Summary of" in err and "test accuracy" in err and "parameters" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    best = summary["best"]
    assert best["nparams"] == ng.nparams(pop[0].graph) and best["test_examples"] == 100
    assert best["test_accuracy"] == pytest.approx(ng.evaluate_accuracy(pop[0].graph, *_prepared(test)))
    t = summary["session"]
    assert t["evaluations"] == 9 and t["compile_seconds"] > 0 and t["train_seconds"] > 0
    assert t["compile_seconds"] + t["train_seconds"] < t["wall_seconds"]


def _prepared(test):
    return np.asarray(test[0], np.float32), np.asarray(test[1])


def test_failures_are_logged_and_the_run_goes_on(tmp_path):
    x, y, _ = _digits(150)
    calls = []

    def fitness(key, candidate):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated out of memory")
        return candidate.replace(fitness=0.5)

    pop = ng.autofit.fit(
        x,
        y,
        key=jax.random.key(0),
        out_dir=tmp_path / "run",
        population_size=3,
        max_generations=1,
        space=_space(),
        fitness=fitness,
        progress=False,
    )
    assert sorted(c.fitness for c in pop) == [0.0, 0.5, 0.5]
    log = (tmp_path / "run" / "run.log").read_text()
    assert "WARNING naivega_jax: fitness failed, scored 0.0: RuntimeError: simulated out of memory" in log
    assert "INFO naivega_jax.autofit:   gen 1 candidate 2/3: fitness 0.0000" in log


def test_test_data_is_checked_before_any_work(tmp_path):
    x, y, (xt, yt) = _digits(150)
    with pytest.raises(ValueError, match=r"test_data must be x of shape \(n, 8, 8, 1\)"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "a", test_data=(xt[:, :4], yt))
    with pytest.raises(ValueError, match=r"labels \[12\]"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "a", test_data=(xt, yt * 0 + 12))
    assert not (tmp_path / "a").exists()


def test_progress_status_line_and_eta(monkeypatch):
    import io

    clock = [100.0]
    monkeypatch.setattr("naivega_jax.autofit._progress.time.monotonic", lambda: clock[0])
    out = io.StringIO()
    p = RunProgress(population_size=4, max_generations=3, stream=out, live=True, refresh=1e6)
    p.begin_generation(1, 4)
    p.started([0])
    clock[0] += 10.0
    p.finished(1)
    p.scored(0.5)
    p.started([1])
    # 1 of 12 evaluations took 10 s: 11 left
    assert p.seconds_per_candidate == 10.0 and p.eta() == 110.0
    assert p.status() == "gen 1/3 | candidate 2/4 | best 0.5000 | 10.0 s/candidate | elapsed 10s | ETA 1m50s"
    p.say("a line")
    text = out.getvalue()
    assert "\r\x1b[Kgen 1/3 | candidate 2/4" in text and "\r\x1b[Ka line\n" in text
    p.set_activity("writing the checkpoint")
    assert p.status().startswith("gen 1/3 | writing the checkpoint | best 0.5000 |")
    p.close()
    assert out.getvalue().endswith("\r\x1b[K")
    p.say("after the end")  # plain: no status line drawn again
    assert out.getvalue().endswith("\r\x1b[Kafter the end\n")
    # a time budget caps the ETA
    p = RunProgress(population_size=4, max_generations=3, stream=io.StringIO(), deadline=clock[0] + 30.0)
    p.begin_generation(1, 4)
    p.started([0])
    clock[0] += 10.0
    p.finished(1)
    assert p.eta() == 20.0
    p.close()
    assert format_duration(59.6) == "1m00s" and format_duration(7200) == "2h00m"


def test_time_budget_stops_mid_generation_and_resume_completes_it(tmp_path):
    """No candidate starts after the deadline (each takes 1 s here, the budget is 1.5 s), the partial generation is
    checkpointed, the summary and the log say why the run stopped, and a resumed run scores the rest."""
    x, y, _ = _digits(150)
    calls = []

    def slow_fitness(key, candidate):
        calls.append(candidate)
        time.sleep(1.0)
        return candidate.replace(fitness=0.5)

    settings = dict(key=jax.random.key(0), population_size=3, max_generations=1, space=_space(), progress=False)
    pop = ng.autofit.fit(x, y, out_dir=tmp_path / "run", fitness=slow_fitness, time_budget=1.5, **settings)
    assert len(calls) < 3 and sum(c.fitness is not None for c in pop) == len(calls)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "time_budget" and summary["session"]["evaluations"] == len(calls)
    _, _, extra, _ = ng.io.load_run_checkpoint(tmp_path / "run")
    assert extra["complete"] is False and len(extra["evaluated"]) == len(calls)
    assert "time budget of 1.5 s reached in generation 1" in (tmp_path / "run" / "run.log").read_text()
    done = len(calls)
    pop = ng.autofit.fit(x, y, out_dir=tmp_path / "run", fitness=slow_fitness, **settings)
    assert len(calls) == 3 and [c.fitness for c in pop] == [0.5, 0.5, 0.5]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "max_generations" and summary["totals"]["evaluations"] == 3
    assert summary["session"]["evaluations"] == 3 - done


def test_a_generation_cut_short_counts_its_members_in_the_engine_totals(tmp_path):
    """The summary's engine counters and its totals agree when the time budget stops a generation part-way."""
    x, y, _ = _digits(150)
    train = ng.TrainThenFitness((x, y), fitness=ng.AccuracyFitness((x, y)), epochs=1)

    def slow(key, candidate):
        scored = train(key, candidate)
        time.sleep(1.0)
        return scored

    settings = dict(key=jax.random.key(0), population_size=3, max_generations=1, space=_space(), progress=False)
    ng.autofit.fit(x, y, out_dir=tmp_path / "run", fitness=slow, time_budget=0.5, precompile=False, **settings)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "time_budget" and 1 <= summary["totals"]["evaluations"] < 3
    engine = summary["engine"]
    assert engine["compiles"] + engine["cache_hits"] == summary["totals"]["evaluations"]  # one executable a member
    assert engine["compile_seconds"] == pytest.approx(summary["totals"]["compile_seconds"])
