"""fit's final phase: the best candidate trained on with the share of the budget kept for it."""

from __future__ import annotations

import json
import time

import jax
import pytest

import naivega_jax as ng
from naivega_jax.autofit._final import final_plan

# small, fast members: the default space may draw a million-parameter member that alone takes a time budget
SMALL_SPACE = ng.ArchSpaceChain(ng.autofit.conv_layer_space([8], [3]), ng.GlobalPoolSpace(), ng.autofit.mlp_space(10))


@pytest.fixture(scope="module")
def digits():
    x, y, xt, yt = ng.datasets.load("digits")
    return x[:600], y[:600], xt[:200], yt[:200]


def test_final_plan_spends_every_epoch_in_decaying_steps():
    for epochs in range(1, 40):
        plan = final_plan(epochs)
        assert sum(n for n, _ in plan) == epochs
        assert [f for _, f in plan] == [1.0, 0.3, 0.1][: len(plan)]
    assert final_plan(0) == []


def test_final_training_without_a_time_budget_trains_the_best_on_its_share_of_the_examples(digits, tmp_path):
    x, y, xt, yt = digits
    kw = dict(key=jax.random.key(0), population_size=3, max_generations=2, epochs_per_generation=1, progress=False)
    plain = ng.autofit.fit(x, y, out_dir=tmp_path / "plain", test_data=(xt, yt), **kw)
    final = ng.autofit.fit(x, y, out_dir=tmp_path / "final", test_data=(xt, yt), final_training=0.5, **kw)
    s_plain, s_final = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("plain", "final"))
    n_train = 540
    assert s_plain["totals"]["train_examples"] == 6 * n_train
    # the search is the same; then the best trains as many examples again (share 0.5): 6 epochs
    assert s_final["totals"]["train_examples"] == 12 * n_train
    assert [c.graph.spec for c in plain] == [c.graph.spec for c in final]
    record = final[0].info["final"]
    assert record["epochs"] == 6 and [s["epochs"] for s in record["steps"]] == [3, 2, 1]
    assert record["validation_accuracy"] >= record["start_validation_accuracy"]
    assert record["validation_accuracy"] == pytest.approx(s_final["best"]["validation_accuracy"])
    assert final[0].fitness == plain[0].fitness  # the search's score
    assert final[0].lineage[-1]["event"] == "final_training"
    # the phase's training calls count in the totals as training and in the engine's counters, one lookup a call
    assert 0 < record["train_seconds"] < s_final["totals"]["train_seconds"]
    assert record["engine"]["compiles"] + record["engine"]["cache_hits"] >= len(record["steps"])
    assert all(s_final["engine"][k] >= v for k, v in record["engine"].items())
    assert s_final["totals"]["compile_seconds"] == pytest.approx(s_final["engine"]["compile_seconds"])
    # the trained best is what the run directory holds
    saved = ng.load_graph(tmp_path / "final" / "best" / "graph")
    assert ng.evaluate_accuracy(saved, xt, yt) == pytest.approx(s_final["best"]["test_accuracy"])
    assert sum("final" in c.info for c in ng.load_population(tmp_path / "final")) == 1  # in the last checkpoint
    # a resume finds the final phase done and does nothing
    again = ng.autofit.fit(x, y, out_dir=tmp_path / "final", test_data=(xt, yt), final_training=0.5, **kw)
    totals = json.loads((tmp_path / "final" / "summary.json").read_text())["totals"]
    assert totals["train_examples"] == 12 * n_train and totals["evaluations"] == 9 + 3  # the screen: 3 x 3
    assert again[0].info["final"] == record


def test_final_training_with_a_time_budget_keeps_its_share_of_the_time(digits, tmp_path):
    x, y, _, _ = digits
    t0 = time.monotonic()
    pop = ng.autofit.fit(
        x,
        y,
        key=jax.random.key(1),
        out_dir=tmp_path,
        population_size=3,
        max_generations=50,
        epochs_per_generation=1,
        time_budget=30,
        final_training=0.6,
        progress=False,
        space=SMALL_SPACE,
    )
    wall = time.monotonic() - t0
    record = pop[0].info["final"]
    assert record["epochs"] >= 1 and record["steps"][0]["seconds"] > 0
    assert wall < 30 + 10  # the budget holds (a margin for the summary on a loaded machine)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped"] == "time_budget"


@pytest.mark.parametrize("share", [1, 1.5, -0.1, True, "half"])
def test_final_training_share_is_checked(digits, tmp_path, share):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match=r"final_training must be None, 0 \(none\) or a share in"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "r", final_training=share, progress=False)
    assert not (tmp_path / "r").exists()


def test_final_training_needs_fits_own_training(digits, tmp_path):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match=r"needs fitness=None or an ng\.TrainThenFitness"):
        ng.autofit.fit(
            x, y, key=jax.random.key(0), out_dir=tmp_path, fitness=ng.SizeFitness(), final_training=0.3, progress=False
        )


def test_a_time_budget_that_stops_the_search_keeps_half_for_the_final_phase_by_default(digits, tmp_path):
    x, y, _, _ = digits
    kw = dict(key=jax.random.key(2), population_size=3, epochs_per_generation=1, space=SMALL_SPACE, progress=False)
    t0 = time.monotonic()
    timed = ng.autofit.fit(x, y, out_dir=tmp_path / "timed", max_generations=1000, time_budget=8, **kw)
    wall = time.monotonic() - t0
    record = timed[0].info["final"]
    assert record["epochs"] >= 1 and timed[0].lineage[-1]["event"] == "final_training"
    assert 6 < wall < 8 + 10  # the search stopped at 4 s; the best trained until the budget's end
    # a search that ends by its generations within half the budget ends the run: no final phase
    t0 = time.monotonic()
    done = ng.autofit.fit(x, y, out_dir=tmp_path / "done", max_generations=1, time_budget=120, **kw)
    assert time.monotonic() - t0 < 60 and "final" not in done[0].info
    assert json.loads((tmp_path / "done" / "summary.json").read_text())["stopped"] == "max_generations"
    # 0: no final phase (upstream) even when the time stops the search; none by default without a time budget
    none = ng.autofit.fit(x, y, out_dir=tmp_path / "none", max_generations=1000, time_budget=4, final_training=0, **kw)
    untimed = ng.autofit.fit(x, y, out_dir=tmp_path / "untimed", max_generations=1, **kw)
    for pop in (none, untimed):
        assert "final" not in pop[0].info and pop[0].lineage[-1]["event"] != "final_training"
    # random search trains every member alike: no final phase when the time stops it either
    rnd = ng.random_search(
        jax.random.key(2),
        x,
        y,
        out_dir=tmp_path / "random",
        members=3,
        budget=300 * 540,
        time_budget=4,
        space=SMALL_SPACE,
        progress=False,
    )
    assert all("final" not in c.info for c in rnd)


def test_a_final_phase_after_a_cut_generation_leaves_its_unscored_members_to_the_resume(digits, tmp_path):
    """The time stops the first generation part-way; the final phase trains the best scored member, and the
    checkpoint still says which members were scored, so a resume scores the rest (none is dropped unscored)."""
    x, y, _, _ = digits

    class SlowFitness(ng.TrainThenFitness):
        def __call__(self, key, candidate):
            time.sleep(1.0)
            return super().__call__(key, candidate)

    fitness = SlowFitness((x, y), fitness=ng.AccuracyFitness((x, y)), epochs=1)
    kw = dict(
        key=jax.random.key(2), population_size=3, max_generations=2, space=SMALL_SPACE, fitness=fitness, progress=False
    )
    first = ng.autofit.fit(x, y, out_dir=tmp_path, time_budget=3, precompile=False, **kw)
    assert sum("final" in c.info for c in first) == 1
    _, _, extra, _ = ng.io.load_run_checkpoint(tmp_path)
    assert extra["complete"] is False and 1 <= len(extra["evaluated"]) < 3  # a fitness of one's own: no screen
    ng.autofit.fit(x, y, out_dir=tmp_path, precompile=False, **kw)
    totals = json.loads((tmp_path / "summary.json").read_text())["totals"]
    assert totals["evaluations"] == 3 + 3
