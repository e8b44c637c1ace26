"""``fit(task="regression")``: float targets, a squared-error search, MSE in the summary, the task in run.json."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import RunDirectoryError


def _linear(n=700, f=8, targets=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    w = rng.normal(size=(f,) if targets is None else (f, targets)).astype(np.float32)
    y = x @ w + 0.1 * rng.normal(size=(n,) if targets is None else (n, targets)).astype(np.float32)
    return x[: n - 100], y[: n - 100], x[n - 100 :], y[n - 100 :]


def _fit(out_dir, x, y, **kwargs):
    settings = {"key": jax.random.key(0), "out_dir": out_dir, "population_size": 3, "progress": False}
    return ng.autofit.fit(x, y, **{**settings, **kwargs})


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    x, y, xt, yt = _linear()
    out = tmp_path_factory.mktemp("linear") / "run"
    pop = _fit(out, x, y, task="regression", population_size=4, max_generations=2, test_data=(xt, yt))
    return pop, out


def test_regression_on_a_linear_problem_beats_predicting_the_mean_by_2x(linear_run):
    _, y, xt, yt = _linear()
    pop, out = linear_run
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"]
    baseline = float(np.mean((yt - y[: ng.autofit.training_size(600)].mean()) ** 2))
    assert best["test_baseline_mse"] == pytest.approx(baseline, rel=1e-5)
    assert best["test_mse"] < baseline / 2
    assert "1 / (1 + validation MSE / " in best["fitness_definition"]
    assert "test_accuracy" not in best
    # the best graph: vector targets get one output column, linear; it computes the MSE the summary reports
    graph = ng.load_graph(out / "best" / "graph")
    out_vertex = graph.output_names[0]
    (dense,) = graph.inputs(out_vertex)
    assert graph.shape(out_vertex) == (1,) and graph.op(dense).activation == "identity"
    predicted = np.asarray(graph(xt))
    assert predicted.shape == (100, 1)
    assert float(np.mean((predicted[:, 0] - yt) ** 2)) == pytest.approx(best["test_mse"], rel=1e-4)
    info = json.loads((out / "run.json").read_text())
    assert info["task"] == "regression" and info["targets"] == [] and info["classes"] is None
    assert all(0.0 < c.fitness <= 1.0 for c in pop)


def test_the_summary_says_what_the_fitness_is(linear_run):
    _, out = linear_run
    text = " ".join(ng.autofit.format_summary(json.loads((out / "summary.json").read_text())).split())
    best = json.loads((out / "summary.json").read_text())["best"]
    assert f"validation fitness {best['fitness']:.4f} = 1 / (1 + MSE {best['validation_mse']:.4g} / " in text
    assert "the validation MSE of predicting the training mean" in text
    assert f"test MSE {best['test_mse']:.4g} on 100 examples (predicting the training mean: " in text


def test_resume_with_another_task_is_refused(linear_run, tmp_path):
    _, out = linear_run
    x, y, _, _ = _linear()
    with pytest.raises(RunDirectoryError, match=r"task='regression', but this call has task='classification'"):
        _fit(out, x, (y > 0).astype(np.int32), population_size=4)
    # the same task resumes
    pop = _fit(out, x, y, task="regression", population_size=4, max_generations=2, test_data=_linear()[2:])
    assert pop.generation == 2


def test_matrix_targets_give_that_many_outputs(tmp_path):
    x, y, xt, yt = _linear(targets=2)
    pop = _fit(
        tmp_path / "run", x, y, task="regression", max_generations=1, epochs_per_generation=1, test_data=(xt, yt)
    )
    g = pop[0].graph
    assert g.shape(g.output_names[0]) == (2,)
    best = json.loads((tmp_path / "run" / "summary.json").read_text())["best"]
    np.testing.assert_allclose(best["test_mse"], float(np.mean((np.asarray(g(xt)) - yt) ** 2)), rtol=1e-4)


def test_squared_error_refuses_outputs_and_targets_of_other_shapes():
    from naivega_jax.autofit import squared_error

    assert squared_error(np.ones((4, 1)), np.zeros((4, 1))).shape == (4, 1)
    with pytest.raises(ng.ShapeError, match=r"outputs of shape \(4, 1\) and targets of shape \(4,\)"):
        squared_error(np.ones((4, 1)), np.zeros(4))


def test_mse_fitness_scores_half_at_the_baseline():
    from naivega_jax.autofit import MSEFitness

    inp = ng.input_vertex("in", shape=(2,))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(1), inp))
    g = g.replace(params={"d": {"kernel": np.zeros((2, 1), np.float32), "bias": np.zeros(1, np.float32)}})
    x, y = np.ones((5, 2), np.float32), np.full((5, 1), 2.0, np.float32)  # MSE 4
    assert MSEFitness((x, y), baseline=4.0)(jax.random.key(0), ng.Candidate(g)).fitness == pytest.approx(0.5)
    assert MSEFitness((x, y), baseline=1.0)(jax.random.key(0), ng.Candidate(g)).fitness == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"baseline must be a finite number > 0, got 0.0"):
        MSEFitness((x, y), baseline=0.0)


@pytest.mark.parametrize(
    ("y", "kwargs", "message"),
    [
        (np.zeros(40), {"task": "clustering"}, r"^fit: task must be one of \('classification', 'regression'\), got "),
        (
            np.zeros((40, 2, 1)),
            {"task": "regression"},
            r"y must have shape \(40,\) or \(40, T\), one row of targets per example; got \(40, 2, 1\)",
        ),
        (
            np.zeros(39),
            {"task": "regression"},
            r"y must have shape \(40,\) or \(40, T\), one row of targets per example; got \(39,\)",
        ),
        (np.where(np.arange(40) == 3, np.nan, 1.0), {"task": "regression"}, r"y holds 1 NaN or Inf values"),
        (np.full(40, 2.5), {"task": "regression"}, r"y is constant \(every target is 2.5\)"),
        (
            np.array(["a"] * 40),
            {"task": "regression"},
            r"y must hold numbers \(the regression targets\), got dtype <U1",
        ),
    ],
)
def test_bad_regression_input_is_refused_before_any_work(tmp_path, y, kwargs, message):
    x = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises((ValueError, TypeError), match=message):
        _fit(tmp_path / "run", x, y, **kwargs)
    assert not (tmp_path / "run").exists()


def test_regression_skips_the_classification_checks_and_random_search_shares_it(tmp_path):
    """Float targets with one value per example are fine (classification would refuse 0.5 as a label)."""
    x, y, xt, yt = _linear(n=300)
    pop = ng.autofit.random_search(
        jax.random.key(1),
        x[:200],
        y[:200] * 0.5,
        out_dir=tmp_path / "rs",
        members=3,
        budget=3 * 180,
        task="regression",
        test_data=(xt, yt * 0.5),
        progress=False,
    )
    info = json.loads((tmp_path / "rs" / "run.json").read_text())
    assert info["task"] == "regression" and info["strategy"]["name"] == "random" and len(pop) == 3
    assert json.loads((tmp_path / "rs" / "summary.json").read_text())["best"]["test_mse"] > 0


def test_a_user_fitness_and_loss_go_through_fit(tmp_path):
    """A user's TrainThenFitness (its own loss, its own score) on regression targets: fit checks the data's shape
    and values only, and keeps the user's fitness values."""
    x, y, _, _ = _linear(n=300)
    x_tr, y_tr = x[:180], y[:180, None]

    def absolute_error(outputs, targets):
        return jnp.abs(outputs - targets)

    def score(key, c):
        return c.replace(fitness=0.25)

    fitness = ng.TrainThenFitness((x_tr, y_tr), fitness=score, loss=absolute_error, epochs=1)
    space = ng.ArchSpaceChain(ng.VertexSpace(ng.DenseSpace(8, "relu")), ng.VertexSpace(ng.DenseSpace(1)))
    pop = _fit(tmp_path / "run", x[:200], y[:200], task="regression", fitness=fitness, space=space, max_generations=1)
    assert [c.fitness for c in pop] == [0.25] * 3
    assert all("train_loss" in c.info for c in pop)


def test_final_training_of_a_regressor_keeps_the_weights_of_the_best_validation_fitness(tmp_path):
    x, y, _, _ = _linear(n=400)
    pop = _fit(
        tmp_path / "run", x, y, task="regression", max_generations=1, epochs_per_generation=1, final_training=0.5
    )
    final = next(c for c in pop if "final" in c.info).info["final"]
    assert final["epochs"] >= 1 and "validation_accuracy" not in final
    fitnesses = [final["start_validation_fitness"], *(step["validation_fitness"] for step in final["steps"])]
    assert final["validation_fitness"] == max(fitnesses) and 0.0 < final["validation_fitness"] <= 1.0


def test_targets_far_from_unit_scale_are_learnt_too(tmp_path):
    """Targets around 500 +- 150 (a price, a count): the graph ends in a fixed affine map set to the training
    targets' mean and standard deviation, and trains on the squared error in those units, so a search of the
    linear problem's size beats the mean as on unit-scale targets; the best graph predicts in the targets' units."""
    x, y, xt, yt = _linear()
    scale = lambda v: 500.0 + 50.0 * v
    pop = _fit(tmp_path / "run", x, scale(y), task="regression", population_size=4, max_generations=2)
    best = pop[0].graph
    predicted = np.asarray(best(xt))[:, 0]
    baseline = float(np.mean((scale(yt) - scale(y[:540]).mean()) ** 2))
    assert float(np.mean((predicted - scale(yt)) ** 2)) < baseline / 2
    out = best.output_names[0]
    assert type(best.op(out)).__name__ == "FixedAffine" and best.spec[out].shield == ()
    (dense,) = best.inputs(out)
    assert best.op(dense).activation == "identity" and best.nout(dense) == 1
    # training, mutation and crossover leave the map where fit set it
    for c in pop:
        state = c.graph.state[c.graph.output_names[0]]
        np.testing.assert_allclose(float(state["offset"][0]), scale(y[:540]).mean(), rtol=1e-5)
        np.testing.assert_allclose(float(state["scale"][0]), scale(y[:540]).std(), rtol=1e-5)
