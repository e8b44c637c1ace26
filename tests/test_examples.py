"""The scripts in examples/ run as a user runs them (a fresh interpreter, another working directory) and print
what they say they show: losses that fall, surgery that keeps the function, accuracies above chance."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_S = 300  # ~10-30 s each on an idle 2-core machine; generous for a loaded one


def run_example(name: str, tmp_path: Path) -> str:
    env = dict(os.environ, NAIVEGA_JAX_CACHE=str(tmp_path / "cache"), NAIVEGA_JAX_XLA_CACHE="off")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


def number(pattern: str, out: str) -> float:
    """The number after ``pattern`` (a regular expression) in ``out``."""
    match = re.search(pattern + r"\s*([-+]?\d+(?:\.\d*)?)", out)
    assert match, f"{pattern!r} not in the output:\n{out}"
    return float(match.group(1))


def test_optax_loop_keeps_the_function_through_surgery_and_training_goes_on(tmp_path):
    out = run_example("optax_loop.py", tmp_path)
    start = number(r"start:\s+loss", out)
    before = number(r"150 steps:\s+loss", out)
    after = number(r"after surgery:\s+loss", out)
    final = number(r"150 more steps:\s+loss", out)
    assert before < 0.6 * start
    assert abs(after - before) < 1e-3  # a pure increase of neurons computes what the graph did
    assert "d1 has 12 neurons" in out
    assert final < 0.5 * before  # Adam's remapped state fits the grown graph, and it trains on


def test_nnx_model_trains_and_the_graph_back_computes_what_the_module_does(tmp_path):
    out = run_example("nnx_model.py", tmp_path)
    assert number(r"before training: test accuracy", out) < 0.3  # 10 classes
    trained = number(r"after training:\s+test accuracy", out)
    assert trained > 0.85
    assert "computes what the module does: True" in out
    assert number(r"graph back: test accuracy", out) == pytest.approx(trained, abs=0.003)


def test_flax_linen_ensemble_of_graphs_trains_every_member(tmp_path):
    out = run_example("flax_linen.py", tmp_path)
    assert "the body computes what the graph does: True" in out
    members = [float(a) for a in re.search(r"member test accuracies: ([\d. ]+)", out).group(1).split()]
    assert len(members) == 8 and min(members) > 0.8
    assert number(r"ensemble test accuracy:", out) > 0.85
    assert "best member's body: 2608 parameters, features (2, 16)" in out


def test_plain_optax_train_graph_continues_its_state_across_surgery(tmp_path):
    out = run_example("plain_optax_train_graph.py", tmp_path)
    loss, accuracy = number(r"3 epochs:\s+training loss", out), number(r"3 epochs:.*test accuracy", out)
    assert accuracy > 0.5
    assert "hidden layer:   8 -> 32 neurons" in out
    assert number(r"after surgery:\s+training loss", out) == pytest.approx(loss, abs=1e-3)
    assert number(r"after surgery:.*test accuracy", out) == pytest.approx(accuracy, abs=0.003)
    assert number(r"3 more epochs:\s+training loss", out) < 0.5 * loss
    assert number(r"3 more epochs:.*test accuracy", out) > accuracy + 0.05


def test_regression_search_beats_predicting_the_mean(tmp_path):
    out = run_example("regression.py", tmp_path)
    mse, baseline = number(r"test MSE", out), number(r"predicting the training mean", out)
    assert 3000 < baseline < 8000  # diabetes progression varies by ~75 around its mean
    assert mse < 0.8 * baseline
    assert number(r"validation fitness", out) > 0.5
