import argparse
import inspect
import json
import os

import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.cli import build_parser, main, parse_duration


def test_parse_duration():
    assert parse_duration("90") == 90.0
    assert parse_duration("90s") == 90.0
    assert parse_duration("10m") == 600.0
    assert parse_duration("1.5h") == 5400.0
    for bad in ("", "-3m", "ten minutes", "0"):
        with pytest.raises(argparse.ArgumentTypeError, match="time budget"):
            parse_duration(bad)


def test_fit_defaults_match_the_design():
    args = build_parser().parse_args(["fit"])
    assert (args.dataset, args.out, args.executor, args.time_budget) == ("mnist1d", None, "local", None)
    assert (args.epochs, args.subset) == (None, None)
    defaults = inspect.signature(ng.autofit.fit).parameters
    assert args.population == defaults["population_size"].default == 8
    assert args.generations == defaults["max_generations"].default == 6
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--population", "0"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One small real run through the command line with AutoFlux's default search space: a tiny npz of 8x8 digits
    (the first 140 of 150 used), 3 candidates, 1 generation, in the default run directory runs/tiny (relative)."""
    root = tmp_path_factory.mktemp("cli")
    x, y, xt, yt = ng.datasets.load("digits")
    npz = root / "tiny.npz"
    np.savez(npz, x_train=x[:150], y_train=y[:150], x_test=xt[:50], y_test=yt[:50])
    args = ["fit", "--dataset", str(npz), "--generations", "1", "--population", "3", "--quiet"]
    args += ["--subset", "140", "--epochs", "3"]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(args) == 0
    finally:
        os.chdir(cwd)
    return root, root / "runs" / "tiny"


def test_fit_writes_a_run_directory(run, capsys):
    _, out = run
    info = json.loads((out / "run.json").read_text())
    assert info["cli"]["population"] == 3 and info["cli"]["subset"] == 140 and info["cli"]["epochs"] == 3
    assert info["n_train"] == 126 and info["n_val"] == 14
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generation"] == 1 and summary["best"]["test_examples"] == 50
    assert (out / "run.log").read_text().count("Begin generation") == 1
    assert ng.load_population(out).generation == 1
    for name in ("PlotFitness/fitness.png", "ScatterPop/scatterpop.png", "ScatterOpt/scatteropt.png"):
        assert (out / "plots" / name).stat().st_size > 1000


def test_resume_continues_the_run(run, capsys):
    _, out = run
    capsys.readouterr()
    assert main(["resume", str(out), "--generations", "2"]) == 0  # the subset and epochs come from run.json
    assert ng.load_population(out).generation == 2
    captured = capsys.readouterr()
    line = next(ln for ln in captured.out.splitlines() if ln.startswith("best: "))
    test_accuracy = float(line.split("test accuracy ")[1].split(",")[0])
    assert test_accuracy == json.loads((out / "summary.json").read_text())["best"]["test_accuracy"]
    assert "up to 2 generations of 3 epochs" in captured.err and "gen 2 candidate 3/3: fitness" in captured.err
    assert "Summary of" in captured.err and "test accuracy" in captured.err


def test_plot_export_and_evaluate(run, capsys, tmp_path):
    _, out = run
    assert main(["plot", str(out)]) == 0
    assert "fitness.png" in capsys.readouterr().out
    assert main(["export", str(out), "--out", str(tmp_path / "best")]) == 0
    graph = ng.load_graph(tmp_path / "best")
    assert graph.nout(graph.output_names[0]) == 10
    assert main(["evaluate", str(out), "--top", "2"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "test accuracy" in ln]
    assert len(lines) == 2
    accuracy = float(lines[0].split("test accuracy")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0


def test_subset_larger_than_the_data_is_refused(run, tmp_path, capsys):
    root, _ = run
    assert main(["fit", "--dataset", str(root / "tiny.npz"), "--out", str(tmp_path / "r"), "--subset", "151"]) == 2
    assert "--subset 151 exceeds the 150 training examples" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a naivega run directory" in capsys.readouterr().err


def test_anneal_reaches_fit_and_random_search(tmp_path):
    x, y, xt, yt = ng.datasets.load("digits")
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=x[:150], y_train=y[:150], x_test=xt[:50], y_test=yt[:50])
    common = ["--dataset", str(npz), "--generations", "1", "--population", "3", "--quiet", "--epochs", "2"]
    for strategy in ("evolution", "random"):
        out = tmp_path / strategy
        assert main(["fit", *common, "--strategy", strategy, "--anneal", "--out", str(out)]) == 0
        info = json.loads((out / "run.json").read_text())
        assert info["anneal_last"] is True and info["cli"]["anneal"] is True
    assert main(["fit", *common, "--out", str(tmp_path / "plain")]) == 0
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["anneal_last"] is False
