"""Tabular data stays tabular: ``fit`` on vectors ``(n, F)`` searches MLPs whose best graph takes ``(n, F)`` raw."""

import json

import jax
import numpy as np
import pytest

import naivega_jax as ng


@pytest.fixture(scope="module")
def cancer():
    """scikit-learn's breast-cancer vectors (569 x 30, features from ~0.001 to ~4000), shuffled with a fixed seed:
    450 to fit on, 119 to test."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order]
    return x[:450], y[:450], x[450:], y[450:]


@pytest.fixture(scope="module")
def cancer_run(cancer, tmp_path_factory):
    x, y, xt, yt = cancer
    out = tmp_path_factory.mktemp("cancer") / "run"
    pop = ng.autofit.fit(
        x,
        y,
        key=jax.random.key(0),
        out_dir=out,
        population_size=4,
        max_generations=2,
        epochs_per_generation=5,
        test_data=(xt, yt),
        progress=False,
    )
    return pop, out


def test_fit_on_breast_cancer_vectors_searches_mlps_that_take_raw_vectors(cancer, cancer_run):
    _, _, xt, yt = cancer
    pop, out = cancer_run
    info = json.loads((out / "run.json").read_text())
    assert info["in_shape"] == [30] and info["task"] == "classification"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["test_accuracy"] > 0.9
    best = ng.load_graph(out / "best" / "graph")
    assert best.shape(best.input_names[0]) == (30,)
    for c in pop:
        ops = {type(c.graph.op(n)).__name__ for n in c.graph.vertex_names}
        assert ops <= {"Input", "Dense", "BatchNorm", "Dropout"}, ops
    # the raw test vectors, as they come, with no channel axis and no standardisation applied by the caller
    predicted = np.argmax(np.asarray(best(xt)), axis=-1)
    assert np.mean(predicted == yt) == pytest.approx(summary["best"]["test_accuracy"])
    assert np.mean(predicted == yt) > 0.9


def test_the_standardisation_is_part_of_the_graph(cancer, cancer_run):
    """The first vertex after the input standardises with the training data's statistics (running mean and
    variance of a shielded batch norm, set before any training): features ~1000 times apart enter the MLP alike."""
    x, _, _, _ = cancer
    pop, _ = cancer_run
    x_tr = x[: ng.autofit.training_size(450)]
    for c in pop:
        g = c.graph
        (first,) = g.outputs(g.input_names[0])
        assert type(g.op(first)).__name__ == "BatchNorm"
        assert g.spec[first].shield == ()  # shielded from every mutation
        mean, var = np.asarray(g.state[first]["mean"]), np.asarray(g.state[first]["var"])
        # training nudges the running statistics toward batch statistics of the same data: they stay close
        np.testing.assert_allclose(mean, x_tr.mean(0), rtol=0.05, atol=1e-3 * x_tr.std(0).max())
        np.testing.assert_allclose(var, x_tr.var(0), rtol=0.3)


def test_tabular_space_samples_mlps_for_vectors():
    space = ng.autofit.default_space((7,), 3)
    for seed in range(8):
        g = ng.sample_graph(jax.random.key(seed), space, ng.input_vertex("in", shape=(7,)))
        assert g(np.zeros((2, 7), np.float32)).shape == (2, 3)
        kinds = [type(g.op(n)).__name__ for n in g.vertex_names]
        assert kinds[:2] == ["Input", "BatchNorm"] and kinds[-1] == "Dense"
        assert set(kinds) <= {"Input", "Dense", "BatchNorm", "Dropout"}
        assert g.op(g.output_names[0]).activation == "identity"


def test_test_data_vectors_stay_vectors():
    from naivega_jax.autofit._data import _prepare_test

    x, y = _prepare_test((np.ones((3, 6)), np.array([20.0, 10, 20])), np.array([10, 20]), (6,))
    assert x.shape == (3, 6) and y.tolist() == [1, 0, 1]


def test_a_run_started_on_vectors_as_sequences_resumes_as_it_started(cancer, tmp_path):
    """Before vectors stayed vectors, fit searched (n, F) as sequences (n, F, 1): such a run (here started on
    (n, F, 1) itself) resumes on the same (n, F) data instead of refusing it as other data."""
    x, y, _, _ = cancer
    x, y = x[:200, :8], y[:200]
    space = ng.ArchSpaceChain(
        ng.autofit.conv_layer_space([4], [3]), ng.GlobalPoolSpace(), ng.VertexSpace(ng.DenseSpace(2), shielded=True)
    )
    settings = {"key": jax.random.key(0), "population_size": 3, "epochs_per_generation": 1, "progress": False}
    ng.autofit.fit(x[..., None], y, out_dir=tmp_path / "run", space=space, max_generations=1, **settings)
    pop = ng.autofit.fit(x, y, out_dir=tmp_path / "run", space=space, max_generations=2, **settings)
    assert pop.generation == 2 and json.loads((tmp_path / "run" / "run.json").read_text())["in_shape"] == [8, 1]


def test_spaces_check_the_task_and_the_number_of_outputs():
    with pytest.raises(ValueError, match=r"^tabular_space: task must be one of \('classification', 'regression'\)"):
        ng.autofit.tabular_space(2, task="ranking")
    with pytest.raises(ValueError, match=r"^default_space: nclasses must be an int >= 2 for task='classification'"):
        ng.autofit.default_space((5,), 1)
    g = ng.sample_graph(
        jax.random.key(0), ng.autofit.default_space((5,), np.int64(1), task="regression"), ng.input_vertex("in", (5,))
    )
    assert g(np.zeros((3, 5), np.float32)).shape == (3, 1)
