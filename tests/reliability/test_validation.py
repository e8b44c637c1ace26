"""Hostile input is refused before any long work, with the error type and a message that names the bad value.

Covered: data whose shape does not match the graph's input vertex, labels that are not integers or not in range,
NaN/Inf in the data, empty data, a validation split with a class missing, a population smaller than the elites,
probabilities outside [0, 1], a search space whose outputs do not match the classes, and an ``out_dir`` that holds
another run's files (other data, key or population size) or something that is not a run.
"""

from __future__ import annotations

import json
import logging

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import RunDirectoryError


def _xy(n=20, features=4, classes=2):
    x = np.random.default_rng(0).standard_normal((n, features)).astype(np.float32)
    return x, np.arange(n) % classes


def _with(a, index, value):
    a = np.array(a, dtype=np.float64 if isinstance(value, float) else a.dtype)
    a[index] = value
    return a


X, Y = _xy()
HEAD3 = ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True)
TINY_SPACE = ng.ArchSpaceChain(ng.VertexSpace(ng.DenseSpace(2, "identity"), shielded=True))


# --- fit: refused before anything is written -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "y", "kwargs", "error", "message"),
    [
        (np.zeros(10), np.zeros(10), {}, ValueError, r"got shape \(10,\) \(ndim 1\)"),
        (np.zeros((10, 2, 2, 2, 2)), np.zeros(10), {}, ValueError, r"got shape \(10, 2, 2, 2, 2\)"),
        (X, Y[:19], {}, ValueError, r"vector of 20 labels .* got shape \(19,\)"),
        (np.array([["a"] * 4] * 20), Y, {}, TypeError, r"numeric array, got dtype <U1"),
        (_with(X, (3, 2), np.nan), Y, {}, ValueError, r"1 NaN or Inf values \(the first, nan, at index \(3, 2\)\)"),
        (_with(X, (7, 0), -np.inf), Y, {}, ValueError, r"the first, -inf, at index \(7, 0\)"),
        (X, _with(Y, 4, 0.5), {}, ValueError, r"integer class labels, got 0\.5 at index 4"),
        (X, _with(Y, 6, np.nan), {}, ValueError, r"integer class labels, got nan at index 6"),
        (X, np.zeros(20), {}, ValueError, r"at least 2 classes, got \[0\.0\]"),
        (np.zeros((0, 4)), np.zeros(0), {}, ValueError, r"x is empty \(0 examples\)"),
        (X, np.r_[np.arange(18) % 2, [0, 0]], {}, ValueError, r"last 2 examples\) has no example of classes \[1\]"),
        (X, Y, {"population_size": 2}, ValueError, r"population_size must be an int >= 3, got 2"),
        (X, Y, {"validation_split": 1.5}, ValueError, r"validation_split must be in \(0, 1\), got 1\.5"),
        (X, Y, {"validation_split": 0.0}, ValueError, r"validation_split must be in \(0, 1\), got 0\.0"),
        (
            X,
            Y,
            {"space": ng.ArchSpaceChain(ng.VertexSpace(ng.DenseSpace(4, "relu")), HEAD3)},
            ValueError,
            r"output shapes \[\(3,\)\], but y has 2 classes",
        ),
    ],
)
def test_fit_refuses_bad_input_before_writing_anything(tmp_path, x, y, kwargs, error, message):
    with pytest.raises(error, match=message):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


def test_population_smaller_than_the_elites():
    with pytest.raises(ValueError, match=r"population_size \(2\) must exceed nelites \(2\)"):
        ng.autofit.default_evolution(2, (4,))


# --- out_dir holding something else ---------------------------------------------------------------------------
def _snapshot(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


@pytest.fixture
def started_run(tmp_path):
    """A run directory as fit leaves it when stopped before its first candidate (no training needed)."""
    out = tmp_path / "run"
    space = TINY_SPACE
    ng.autofit.fit(X, Y, key=jax.random.key(1), out_dir=out, population_size=3, space=space, time_budget=1e-9,
                   progress=False)  # fmt: skip
    assert (out / "run.json").is_file() and ng.io.load_run_checkpoint(out)[2]["complete"] is False
    return out, space


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": jax.random.key(2)}, r"holds a run with key=\[0, 1\], but this call has key=\[0, 2\]"),
        ({"population_size": 4}, r"holds a run with population_size=3, but this call has population_size=4"),
        ({"x": X[:, :3]}, r"holds a run with in_shape=\[4\], but this call has in_shape=\[3\]"),
        ({"y": Y + 5}, r"holds a run with classes=\[0, 1\], but this call has classes=\[5, 6\]"),
        ({"x": X[:16], "y": Y[:16]}, r"holds a run with n_train=18, but this call has n_train=14"),
    ],
)
def test_out_dir_of_another_run_is_refused_and_left_alone(started_run, change, message):
    out, space = started_run
    before = _snapshot(out)
    args = {"x": X, "y": Y, "key": jax.random.key(1), "population_size": 3, **change}
    with pytest.raises(RunDirectoryError, match=message):
        ng.autofit.fit(args.pop("x"), args.pop("y"), out_dir=out, space=space, progress=False, **args)
    assert _snapshot(out) == before


def test_out_dir_holding_files_that_are_not_a_run(tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    with pytest.raises(RunDirectoryError, match=rf"out_dir '{tmp_path}' is not empty and holds no naivega_jax run"):
        ng.autofit.fit(X, Y, key=jax.random.key(0), out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_a_half_written_run_json_does_not_block_the_directory(tmp_path):
    """A run killed while writing run.json leaves only the temporary file; the directory still counts as empty."""
    (tmp_path / ".run.json.tmp").write_text('{"format": "naivega_jax.ru')
    space = TINY_SPACE
    ng.autofit.fit(X, Y, key=jax.random.key(1), out_dir=tmp_path, population_size=3, space=space, time_budget=1e-9,
                   progress=False)  # fmt: skip
    assert json.loads((tmp_path / "run.json").read_text())["population_size"] == 3


# --- training data of TrainThenFitness: checked when the fitness is made ---------------------------------------
def _score(key, c):
    return c.replace(fitness=1.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((X[:0], Y[:0]), r"train_data x is empty \(shape \(0, 4\)\)"),
        ((X, Y[:5]), r"train_data x has 20 examples but y has shape \(5,\)"),
        ((_with(X, (2, 1), np.inf), Y), r"1 NaN or Inf values \(the first, inf, at index \(2, 1\)\)"),
        (({"a": X, "b": _with(X, (0, 3), np.nan)}, Y), r"train_data x\[1\] holds 1 NaN or Inf .* index \(0, 3\)"),
        ((X, Y.astype(np.float32)), r"integer class labels, one per example; got y of dtype float32"),
        ((X, np.stack([Y, Y], 1)), r"got y of dtype int64 and shape \(20, 2\)"),
        ((X, _with(Y, 9, -1)), r"class labels must be >= 0, got -1 at index 9"),
    ],
)
def test_train_then_fitness_checks_its_data(data, message):
    with pytest.raises(ValueError, match=message):
        ng.TrainThenFitness(data, fitness=_score)
    with pytest.raises(ValueError, match=message):
        ng.TrainAccuracyFitness(data)


def _graph(features=4, outputs=3):
    inp = ng.input_vertex("in", shape=(features,))
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(outputs), inp))


def test_data_that_does_not_match_the_input_vertex_fails_the_candidate_with_both_shapes(caplog):
    f = ng.TrainThenFitness((X[:, :3], Y), fitness=_score, invalid_fitness=-1.0)
    with caplog.at_level(logging.WARNING, logger="naivega_jax"):
        pop = ng.evolution.evaluate(jax.random.key(0), f, ng.Population([ng.Candidate(_graph())]), invalid_fitness=-1.0)
    assert pop[0].fitness == -1.0
    assert "input 'in' must have shape (n, 4), got (20, 3)" in pop[0].info["failure"]
    assert "input 'in' must have shape (n, 4), got (20, 3)" in caplog.text
    with pytest.raises(ValueError, match=r"input 'in' must have shape \(n, 4\), got \(20, 3\)"):
        ng.evaluate_accuracy(_graph(), X[:, :3], Y)


def test_labels_out_of_range_of_the_graph_outputs_fail_the_candidate_before_training():
    y = _with(Y, 11, 7)
    f = ng.TrainThenFitness((X, y), fitness=_score, invalid_fitness=-1.0)
    pop = ng.evolution.evaluate(
        jax.random.key(0), f, ng.Population([ng.Candidate(_graph(outputs=3))]), invalid_fitness=-1.0
    )
    assert pop[0].fitness == -1.0
    assert pop[0].info["failure"] == (
        "ValueError: TrainThenFitness: class label 7 (at index 11) is out of range for a graph with 3 outputs; "
        "labels must lie in 0..2"
    )
    assert "train_steps" not in pop[0].info  # refused before any training
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2 \(num_classes=3\), got 7"):
        ng.data.check_labels(y, num_classes=3)


# --- probabilities outside [0, 1] ------------------------------------------------------------------------------
M = ng.NoutMutation(0.1)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: ng.MutationProbability(M, 1.5), ValueError, r"MutationProbability\(p=\.\.\.\): .* got 1\.5"),
        (lambda: ng.MutationProbability(M, -0.1), ValueError, r"got -0\.1"),
        (lambda: ng.MutationProbability(M, float("nan")), ValueError, r"got nan"),
        (lambda: ng.MutationProbability(M, -1), ValueError, r"int percentage 0\.\.100\), got -1$"),
        (lambda: ng.MutationProbability(M, 150), ValueError, r"got 150$"),
        (lambda: ng.MutationProbability(M, "0.5"), TypeError, r"got '0\.5'"),
        (lambda: ng.AddEdgeMutation(1.5), ValueError, r"AddEdgeMutation\(p=\.\.\.\): .* got 1\.5"),
        (lambda: ng.mutation.MergeFun(2.0), ValueError, r"MergeFun\(pconc=\.\.\.\): .* got 2\.0"),
        (
            lambda: ng.HighUtilityMutationProbability(M, 1.5),
            ValueError,
            r"HighUtilityMutationProbability\(pbase=\.\.\.\): .* got 1\.5",
        ),
        (lambda: ng.LowUtilityMutationProbability(M, -0.5), ValueError, r"got -0\.5"),
        (
            lambda: ng.VertexCrossover(ng.MutationProbability(ng.CrossoverSwap(), 1.2)),
            ValueError,
            r"MutationProbability\(p=\.\.\.\): .* got 1\.2",
        ),
        (lambda: ng.TournamentSelection(2, 2, 1.5), ValueError, r"TournamentSelection: p must be .* got 1\.5"),
        (lambda: ng.TournamentSelection(2, 2, -0.2), ValueError, r"got -0\.2"),
        (lambda: ng.EwmaFitness(ng.SizeFitness(), 1.5), ValueError, r"EwmaFitness: alpha .* got 1\.5"),
        (lambda: ng.TrainAccuracyFitness((X, Y), drop=1.0), ValueError, r"drop must be a number in \[0, 1\), got 1\.0"),
        (
            lambda: ng.FlipIterator([X], p=1.5, key=jax.random.key(0)),
            ValueError,
            r"FlipIterator: p must be a probability .* got 1\.5",
        ),
        (lambda: ng.Dropout(1.0), ng.GraphError, r"Dropout: rate must be in \[0, 1\), got 1\.0"),
        (lambda: ng.BatchNorm(momentum=1.5), ng.GraphError, r"momentum must be in \[0, 1\), got 1\.5"),
        (
            lambda: ng.data.train_val_split(X, Y, fraction=1.0),
            ValueError,
            r"fraction must be a number in \(0, 1\), got 1\.0",
        ),
    ],
)
def test_probabilities_outside_0_1_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_probability_function_returning_more_than_1_names_the_vertex_and_value():
    g = _graph()
    m = ng.VertexMutation(ng.mutation.WeightedMutationProbability(M, lambda graph, name: 2.0))
    with pytest.raises(ValueError, match=r"WeightedMutationProbability: pfun\('out'\): .* got 2\.0"):
        m(jax.random.key(0), g)
