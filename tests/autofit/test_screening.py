"""fit(screening=N): the first generation draws N x population_size members on 1/N of the examples each and keeps
the best population_size, unchanged, for generation 2."""

import json

import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import search_budget
from naivega_jax.autofit._run import screening_fitness

RNG = np.random.default_rng(0)
X = RNG.normal(size=(240, 6)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
N_TRAIN = 216  # fit's validation split keeps the last 10%
SMALL = {"population_size": 3, "max_generations": 2, "epochs_per_generation": 2, "progress": False}


def _names(pop):
    return [c.lineage[0]["name"] for c in pop]


def test_the_screen_keeps_the_best_of_twice_the_members_and_trains_them_on(key, tmp_path):
    one = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "one", screening=2, **{**SMALL, "max_generations": 1})
    assert len(one) == 6
    assert all(c.info["train_examples"] == N_TRAIN for c in one)  # 2 epochs / 2: one epoch each
    upstream = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "up", screening=1, **{**SMALL, "max_generations": 1})
    # the first population_size members are the ones an unscreened run draws
    assert {n: c.graph.spec for n, c in zip(_names(one), one) if n in _names(upstream)} == {
        n: c.graph.spec for n, c in zip(_names(upstream), upstream)
    }
    two = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "two", screening=2, **SMALL)
    assert len(two) == 3
    best3 = sorted(one, key=lambda c: c.fitness, reverse=True)[:3]
    assert sorted(_names(two)) == sorted(_names(best3))  # kept unchanged: no crossover or mutation on the way
    assert all(c.info["train_examples"] == 2 * N_TRAIN for c in two)
    totals = json.loads((tmp_path / "two" / "summary.json").read_text())["totals"]
    assert totals["train_examples"] == 6 * N_TRAIN + 3 * 2 * N_TRAIN
    assert totals["train_examples"] == search_budget(N_TRAIN, 3, 2, 2, screening=2)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["screening"] == 2


def test_a_new_run_screens_by_default_and_a_resume_goes_on_as_it_started(key, tmp_path):
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "new", **{**SMALL, "max_generations": 1})
    assert json.loads((tmp_path / "new" / "run.json").read_text())["screening"] == ng.autofit._fit.SCREENING == 3
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "new", **SMALL)  # resumed: evolves the screen
    assert len(pop) == 3
    with pytest.raises(ng.autofit.RunDirectoryError, match="screening=3, but this call has screening=1"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "new", screening=1, **{**SMALL, "max_generations": 3})
    # a run from before the option screened nothing: its run.json has no "screening", and it resumes unscreened
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "old", screening=1, **{**SMALL, "max_generations": 1})
    path = tmp_path / "old" / "run.json"
    doc = json.loads(path.read_text())
    del doc["screening"]
    path.write_text(json.dumps(doc))
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "old", **SMALL)
    assert len(pop) == 3 and json.loads(path.read_text()).get("screening", 1) == 1


def test_a_screen_stopped_part_way_resumes_to_the_same_population(key, tmp_path):
    whole = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "whole", screening=2, **SMALL)

    # a time budget that ends the first generation after its first members
    part = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "part", screening=2, time_budget=1e-9, **SMALL)
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["stopped"] == "time_budget"
    assert len(part) == 6
    again = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "part", screening=2, **SMALL)
    assert [c.fitness for c in again] == [c.fitness for c in whole]
    assert _names(again) == _names(whole)


def test_screening_fitness_trains_a_share_of_the_examples():
    x, y = np.zeros((90, 2), np.float32), np.zeros(90, np.int32)
    fit5 = ng.TrainThenFitness((x, y), fitness=lambda k, c: c, epochs=5)
    assert screening_fitness(fit5, 3).epochs == 2 and screening_fitness(fit5, 5).epochs == 1
    short = screening_fitness(ng.TrainThenFitness((x, y), fitness=lambda k, c: c, epochs=2), 3)
    assert short.epochs == 1 and len(short.train_data[0]) == 60
    # one epoch per generation: the screen costs what a generation does
    assert search_budget(54000, epochs=1) == 6 * 8 * 54000
    # by default a generation is one of 3 parts of 18,000, and the screen's members a third of the first each
    assert search_budget(54000) == 5 * 8 * 18000 + 24 * 6000


def test_bad_screening_is_refused_before_work(key, tmp_path):
    with pytest.raises(ValueError, match="fit: screening must be None or an int >= 1, got 0"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "a", screening=0, **SMALL)
    with pytest.raises(ValueError, match=r"screening .* needs fitness=None or an ng\.TrainThenFitness"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "b", screening=2, fitness=ng.SizeFitness(), **SMALL)
    assert not any((tmp_path / d).exists() for d in "ab")


def test_random_search_does_not_screen(key, tmp_path):
    pop = ng.random_search(key, X, Y, out_dir=tmp_path, members=4, budget=4 * N_TRAIN * 2, progress=False)
    assert len(pop) == 4
    assert json.loads((tmp_path / "run.json").read_text())["screening"] == 1


def test_the_command_line_screens_and_refuses_screening_for_random_search(tmp_path, capsys):
    from naivega_jax.cli import main

    x, y, xt, yt = ng.datasets.load("digits")
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x[:400], y_train=y[:400], x_test=xt[:50], y_test=yt[:50])
    out = tmp_path / "run"
    common = ["--dataset", str(data), "--population", "3", "--epochs", "2", "--quiet"]
    assert main(["fit", "--out", str(out), "--generations", "1", "--screening", "2", *common]) == 0
    assert len(ng.load_population(out)) == 6
    assert json.loads((out / "run.json").read_text())["screening"] == 2
    assert main(["fit", "--out", str(tmp_path / "r"), "--strategy", "random", "--screening", "2", *common]) == 2
    assert "--screening is for --strategy evolution" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "--out", str(tmp_path / "z"), "--screening", "0", *common])
    assert not (tmp_path / "r").exists() and not (tmp_path / "z").exists()
