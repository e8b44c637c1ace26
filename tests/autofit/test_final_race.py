"""The timed final phase races the fittest members for equal time; the winner trains on and is the run's best."""

from __future__ import annotations

import json
import time

import jax
import numpy as np
import optax
import pytest

import naivega_jax as ng
from naivega_jax.autofit import _run
from naivega_jax.autofit._final import race
from naivega_jax.autofit._fit import _sorted
from naivega_jax.autofit._run import _best_index, _final_entrants
from naivega_jax.autofit._summary import run_rank
from naivega_jax.cli import main

LOSS = optax.softmax_cross_entropy_with_integer_labels
# small, fast members: the default space may draw a million-parameter member that alone takes a time budget
SMALL_SPACE = ng.ArchSpaceChain(ng.autofit.conv_layer_space([8], [3]), ng.GlobalPoolSpace(), ng.autofit.mlp_space(10))


@pytest.fixture(scope="module")
def digits():
    x, y, xt, yt = ng.datasets.load("digits")
    return x[:600], y[:600], xt[:200], yt[:200]


def _linear(x, optimiser, fitness):
    """A one-layer classifier of flat digits that the search measured at 0.2 s an epoch."""
    inp = ng.input_vertex("in", shape=x.shape[1:])
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(10), inp))
    info = {"train_epochs": 1, "train_seconds": 0.2}
    return ng.Candidate(graph, optimiser=optimiser, batch_size=32, fitness=fitness, info=info)


def test_a_race_picks_the_entrant_that_ends_best_on_validation_in_equal_shares_of_the_time(digits):
    x, y, _, _ = digits
    x = x.reshape(len(x), -1)
    train, val = (x[:450], y[:450]), (x[450:], y[450:])
    # the fitter entrant barely learns at its learning rate; the second learns the digits in a few epochs
    slow = _linear(x, ng.SGD(1e-7), 0.9)
    quick = _linear(x, ng.Adam(1e-2), 0.8)
    t0 = time.monotonic()
    winner, results = race(jax.random.key(0), [slow, quick], train, val, seconds=4.0, loss=LOSS)
    wall = time.monotonic() - t0
    assert winner == 1
    scores = [record["validation_accuracy"] for _, record in results]
    assert scores[1] > 0.8 and scores[0] < 0.5
    # each trained in its half of the time (compiles are not planned for: a margin for a loaded machine)
    assert wall < 4.0 + 4.0
    for trained, record in results:
        assert record["epochs"] > 1 and record["train_seconds"] < 2.0
        assert trained.info["final"] is record and trained.fitness in (0.9, 0.8)
    # of equal scores the first (the fitter) wins
    winner, results = race(jax.random.key(0), [quick, quick], train, val, seconds=2.0, loss=LOSS)
    scores = [record["validation_accuracy"] for _, record in results]
    assert winner == int(np.argmax(scores))  # max's first of equals: 0 when they tie


def _population(graph, *members):
    return ng.Population([ng.Candidate(graph, fitness=f, info=info) for f, info in members])


def test_the_entrants_are_the_fittest_members_that_have_not_had_a_final_phase():
    """A resumed run: members of the last session's race are not raced again while none fitter has come; a member
    scored since then that is fitter gets a final phase (raced with the next fittest); failed and unscored members
    never enter."""
    inp = ng.input_vertex("in", shape=(3,))
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
    pop = lambda *members: _population(graph, *members)
    assert _final_entrants(pop((0.5, {}), (0.9, {}), (0.7, {})), 1) == [1]
    assert _final_entrants(pop((0.5, {}), (0.9, {}), (0.7, {})), 2) == [1, 2]
    assert _final_entrants(pop((0.5, {}), (0.9, {}), (0.7, {})), 5) == [1, 2, 0]
    alone = {"final": {"epochs": 3, "validation_accuracy": 0.93}}  # a final phase without a race: its own fitness
    assert _final_entrants(pop((0.5, {}), (0.9, alone), (0.7, {})), 2) == []
    assert _final_entrants(pop((0.95, {}), (0.9, alone), (0.7, {})), 1) == [0]
    assert _final_entrants(pop((0.95, {}), (0.9, alone), (0.7, {})), 2) == [0, 2]
    # the winner of a race was the second fittest; the fittest lost and stays as the search left it
    won = {"final": {"epochs": 3, "validation_accuracy": 0.93, "race": {"best_fitness": 0.9}}}
    assert _final_entrants(pop((0.9, {}), (0.8, won), (0.7, {})), 2) == []
    assert _final_entrants(pop((0.9, {}), (0.8, won), (0.91, {})), 2) == [2, 0]
    assert _final_entrants(pop((0.99, {"failure": "nonfinite loss"}), (0.9, {}), (None, {})), 2) == [1]
    assert _final_entrants(pop((None, {}), (0.9, {"failure": "out of memory"})), 2) == []


def test_a_member_slower_and_less_fit_than_an_entrant_is_not_raced():
    """In the time a race gives it, a fitter member that also trains faster gets as far: the other does not enter."""
    inp = ng.input_vertex("in", shape=(3,))
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
    pop = lambda *members: _population(graph, *members)
    speed = lambda seconds: {"train_examples": 1000, "train_seconds": seconds}  # seconds per 1,000 examples
    assert _final_entrants(pop((0.9, speed(1.0)), (0.8, speed(3.0))), 2, 54000) == [0]
    assert _final_entrants(pop((0.9, speed(3.0)), (0.8, speed(1.0))), 2, 54000) == [0, 1]
    assert _final_entrants(pop((0.9, speed(3.0)), (0.85, speed(2.0)), (0.8, speed(4.0))), 3) == [0, 1]
    assert _final_entrants(pop((0.9, speed(3.0)), (0.85, speed(4.0)), (0.8, speed(1.0))), 3) == [0, 2]
    assert _final_entrants(pop((0.9, speed(3.0)), (0.85, speed(2.0)), (0.8, speed(1.0))), 3) == [0, 1, 2]
    # as fast is not faster; a speed that is not recorded does not keep a member out
    assert _final_entrants(pop((0.9, speed(2.0)), (0.85, speed(2.0))), 2) == [0]
    assert _final_entrants(pop((0.9, speed(2.0)), (0.85, {})), 2) == [0, 1]
    per_epoch = {"train_epochs": 2, "train_seconds": 1.0}  # a fitness of one's own that counts epochs, not examples
    assert _final_entrants(pop((0.9, {"train_epochs": 1, "train_seconds": 3.0}), (0.85, per_epoch)), 2) == [0, 1]


def test_a_member_trained_by_a_final_phase_ranks_first_whatever_its_fitness():
    inp = ng.input_vertex("in", shape=(3,))
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
    won = {"final": {"validation_accuracy": 0.93, "race": {"best_fitness": 0.9}}}
    earlier = {"final": {"validation_accuracy": 0.91}}
    pop = _population(graph, (0.9, {}), (None, {}), (0.8, won), (0.85, earlier), (0.95, {"failure": "nan"}))
    assert _best_index(pop) == 2
    assert [c.fitness for c in _sorted(pop)] == [0.8, 0.85, 0.95, 0.9, None]
    assert run_rank(pop[0]) == (False, 0.9) and run_rank(pop[2]) == (True, 0.93)
    regression = {"final": {"validation_fitness": 0.7}}
    assert run_rank(ng.Candidate(graph, fitness=0.6, info=regression)) == (True, 0.7)


def test_fit_races_the_fittest_and_the_winner_is_the_runs_best(digits, tmp_path, monkeypatch):
    x, y, xt, yt = digits
    # which members enter depends on the speeds the search measured (the test above): here all of the fittest do
    monkeypatch.setattr(_run, "epoch_seconds", lambda candidate, n: None)
    kw = dict(
        key=jax.random.key(3),
        population_size=3,
        max_generations=1000,
        epochs_per_generation=1,
        time_budget=20,
        space=SMALL_SPACE,
        test_data=(xt, yt),
        progress=False,
    )
    pop = ng.autofit.fit(x, y, out_dir=tmp_path / "race", final_candidates=3, **kw)
    record = pop[0].info["final"]
    entrants = record["race"]["entrants"]
    # every valid member (3 at most: a generation the time cut may leave one unscored), fittest first
    valid = [c for c in pop if c.fitness is not None and "failure" not in c.info]
    assert len(entrants) == len(valid) >= 2
    assert [e["fitness"] for e in entrants] == sorted((c.fitness for c in valid), reverse=True)
    assert record["race"]["best_fitness"] == entrants[0]["fitness"]
    won = entrants[record["race"]["winner"]]
    assert won["fitness"] == pop[0].fitness and won["validation_score"] == max(e["validation_score"] for e in entrants)
    # the winner trained on from where its race ended: the phase after it starts at its race's score
    assert record["start_validation_accuracy"] == won["validation_score"]
    assert record["epochs"] > won["epochs"] > 0
    assert sum("final" in c.info for c in pop) == 1  # the others stay as the search left them
    summary = json.loads((tmp_path / "race" / "summary.json").read_text())
    assert summary["best"]["fitness"] == pop[0].fitness
    assert summary["best"]["validation_accuracy"] == record["validation_accuracy"]
    # the race's training counts in the totals: every entrant's epochs and the winner's phase after it
    assert summary["totals"]["candidate_epochs"] > sum(e["epochs"] for e in entrants) + record["epochs"] - won["epochs"]
    best = ng.load_graph(tmp_path / "race" / "best" / "graph")  # the winner's trained weights
    assert ng.evaluate_accuracy(best, xt, yt) == ng.evaluate_accuracy(pop[0].graph, xt, yt)
    # 1: the fittest trains on alone, no race
    alone = ng.autofit.fit(x, y, out_dir=tmp_path / "alone", final_candidates=1, **kw)
    assert "race" not in alone[0].info["final"]
    assert alone[0].fitness == max(c.fitness for c in alone if c.fitness is not None and "failure" not in c.info)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_final_candidates_is_checked(digits, tmp_path, value):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match=r"final_candidates must be None or an int >= 1"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "r", final_candidates=value, time_budget=60)
    assert not (tmp_path / "r").exists()


def test_a_race_needs_a_time_budget(digits, tmp_path, capsys):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match=r"final_candidates races members for equal time.*got final_candidates=2"):
        ng.autofit.fit(x, y, key=jax.random.key(0), out_dir=tmp_path / "r", final_candidates=2)
    assert not (tmp_path / "r").exists()
    ng.autofit.FitSettings(final_candidates=1)  # the fittest alone: no time budget needed
    assert main(["fit", "--dataset", "digits", "--out", str(tmp_path / "c"), "--final-candidates", "3"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        "naivega: error: --final-candidates 3 races members for equal time in the final phase; it needs --time-budget"
    )
    argv = ["fit", "--dataset", "digits", "--out", str(tmp_path / "c"), "--strategy", "random"]
    argv += ["--final-candidates", "2"]
    assert main(argv) == 2
    assert "--final-candidates is for --strategy evolution" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
