"""The command line's ``--task regression`` (an npz of float targets) and ``--tensorboard``."""

import contextlib
import io
import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import naivega_jax as ng
from naivega_jax.cli import build_parser, main


def _steps(logdir, tag):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0}).Reload()
    return [e.step for e in events.Scalars(tag)]


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """A tabular regression npz (8 features, y = x @ w + noise, float y) fitted by `naivega fit --task regression`."""
    root = tmp_path_factory.mktemp("cli_regression")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = x @ rng.normal(size=8).astype(np.float32) + 0.1 * rng.normal(size=400).astype(np.float32)
    npz = root / "linear.npz"
    np.savez(npz, x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    out = root / "run"
    args = ["fit", "--task", "regression", "--dataset", str(npz), "--out", str(out)]
    args += ["--generations", "1", "--population", "3", "--epochs", "2", "--quiet"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return args, out, (x[300:], y[300:]), printed.getvalue()


def test_fit_task_regression_on_an_npz_of_float_targets(regression_run):
    _, out, (xt, yt), printed = regression_run
    line = next(ln for ln in printed.splitlines() if ln.startswith("best: "))
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"]
    assert f"test MSE {best['test_mse']:.4f}" in line and f"{best['test_baseline_mse']:.4f}" in line
    assert best["test_examples"] == 100
    info = json.loads((out / "run.json").read_text())
    assert info["task"] == "regression" and info["cli"]["task"] == "regression" and info["in_shape"] == [8]
    graph = ng.load_graph(out / "best" / "graph")
    assert float(np.mean((np.asarray(graph(xt))[:, 0] - yt) ** 2)) == pytest.approx(best["test_mse"], rel=1e-4)


def test_resume_and_evaluate_keep_the_task(regression_run, capsys):
    _, out, _, _ = regression_run
    assert main(["resume", str(out), "--generations", "2"]) == 0
    assert ng.load_population(out).generation == 2
    capsys.readouterr()
    assert main(["evaluate", str(out), "--top", "2"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "test MSE" in ln]
    assert len(lines) == 2 and "(100 test examples)" in lines[0]


def test_task_must_be_known():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--task", "clustering"])
    assert build_parser().parse_args(["fit"]).task == "classification"


def test_classification_of_float_labels_says_to_use_task_regression(regression_run, tmp_path, capsys):
    args, _, _, _ = regression_run
    npz = args[args.index("--dataset") + 1]
    assert main(["fit", "--dataset", npz, "--out", str(tmp_path / "r"), "--generations", "1"]) == 2
    err = capsys.readouterr().err
    assert "naivega: error:" in err and "--task regression" in err
    assert not (tmp_path / "r").exists()


def test_tensorboard_writes_events_and_resume_keeps_it(tmp_path, capsys):
    x, y, xt, yt = ng.datasets.load("digits")
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=x[:150], y_train=y[:150], x_test=xt[:40], y_test=yt[:40])
    out = tmp_path / "run"
    args = ["fit", "--dataset", str(npz), "--out", str(out), "--generations", "1", "--population", "3"]
    assert main([*args, "--epochs", "1", "--quiet", "--tensorboard"]) == 0
    assert json.loads((out / "run.json").read_text())["cli"]["tensorboard"] is True
    assert _steps(out / "tensorboard", "fitness/best") == [1]
    best = json.loads((out / "summary.json").read_text())["best"]["fitness"]
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert events.Scalars("fitness/best")[0].value == pytest.approx(best)
    assert main(["resume", str(out), "--generations", "2", "--quiet"]) == 0  # no --tensorboard: from the plan
    assert _steps(out / "tensorboard", "fitness/best") == [1, 2]


def test_without_tensorboard_there_are_no_events(tmp_path):
    x, y, xt, yt = ng.datasets.load("digits")
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=x[:150], y_train=y[:150], x_test=xt[:40], y_test=yt[:40])
    out = tmp_path / "run"
    args = ["fit", "--dataset", str(npz), "--out", str(out), "--generations", "1", "--population", "3"]
    assert main([*args, "--epochs", "1", "--quiet"]) == 0
    assert not (out / "tensorboard").exists()
    assert json.loads((out / "run.json").read_text())["cli"]["tensorboard"] is False


def test_tabular_classification_from_an_npz_keeps_vectors_through_fit_and_evaluate(tmp_path, capsys):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order]
    npz = tmp_path / "cancer.npz"
    np.savez(npz, x_train=x[:300], y_train=y[:300], x_test=x[300:400], y_test=y[300:400])
    out = tmp_path / "run"
    args = ["fit", "--dataset", str(npz), "--out", str(out), "--generations", "1", "--population", "3"]
    assert main([*args, "--epochs", "2", "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["in_shape"] == [30]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--top", "1"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "test accuracy" in ln]
    assert float(line.split("test accuracy")[1].split()[0]) > 0.8


def test_tensorboard_without_the_package_is_a_one_line_error_before_any_work(tmp_path, capsys, monkeypatch):
    import naivega_jax.plot._tensorboard as tb

    def missing():
        raise ImportError("ng.TensorBoard needs the tensorboard package: pip install tensorboard")

    monkeypatch.setattr(tb, "_tensorboard", missing)
    out = tmp_path / "run"
    assert main(["fit", "--dataset", "digits", "--out", str(out), "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert "naivega: error: --tensorboard: ng.TensorBoard needs the tensorboard package" in err
    assert not out.exists()
