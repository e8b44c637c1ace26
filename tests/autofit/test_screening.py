"""fit(screening=N): the first generation draws N x population_size members on 1/N of the examples each and keeps
the best population_size, unchanged, for generation 2."""

import json

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import search_budget
from naivega_jax.autofit._run import screen_generations, screen_scale, screened_examples, screening_fitness

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
    # the summary says what the screen trained, in its order, and which of its members the best descends from
    screen = json.loads((tmp_path / "two" / "summary.json").read_text())["screen"]
    ranked = sorted(one, key=lambda c: (-c.fitness, int(_names([c])[0][5:])))
    assert screen["members"] == 6 and screen["kept"] == 3
    assert [e["name"] for e in screen["ranking"]] == _names(ranked)
    assert [e["fitness"] for e in screen["ranking"]] == [c.fitness for c in ranked]
    assert [e["nparams"] for e in screen["ranking"]] == [ng.nparams(c.graph) for c in ranked]
    best = max(two, key=lambda c: c.fitness)
    assert screen["best_from"] == {"name": _names([best])[0], "rank": _names(ranked).index(_names([best])[0]) + 1}
    log = " ".join((tmp_path / "two" / "run.log").read_text().split())
    origin = f"the best descends from {_names([best])[0]}, the screen's number {screen['best_from']['rank']}"
    assert f"screen 6 members trained, the best 3 went on; {origin}" in log
    # it stays in the checkpoints: a resume that goes on after the screen still has it
    more = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "two", screening=2, **{**SMALL, "max_generations": 3})
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert more.generation == 3 and summary["screen"]["ranking"] == screen["ranking"]
    assert json.loads((tmp_path / "up" / "summary.json").read_text())["screen"] is None


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


def test_the_start_line_says_whether_generation_1_screens(key, tmp_path):
    one = {**SMALL, "max_generations": 1}
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "default", **one)
    assert "; generation 1 screens 9 members" in (tmp_path / "default" / "run.log").read_text()
    # a TrainThenFitness of one's own trains as fit does but screens only when asked: the line says so
    score = ng.AccuracyFitness((X[N_TRAIN:], Y[N_TRAIN:]))
    own = ng.TrainThenFitness((X[:N_TRAIN], Y[:N_TRAIN]), fitness=score, epochs=2)
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "own", fitness=own, **one)
    log = (tmp_path / "own" / "run.log").read_text()
    assert "; no screen with a fitness of your own (screening=3 screens its first generation)" in log
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "asked", fitness=own, screening=2, **one)
    assert "; generation 1 screens 6 members" in (tmp_path / "asked" / "run.log").read_text()
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "off", screening=1, **one)
    assert "screen" not in (tmp_path / "off" / "run.log").read_text().splitlines()[0]


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


def _params(population):
    return [np.asarray(leaf).tobytes() for c in population for leaf in jax.tree_util.tree_leaves(c.graph.params)]


def test_anneal_last_decays_the_learning_rate_in_the_last_generation_only(key, tmp_path):
    options = {**SMALL, "epochs_per_generation": 4, "screening": 1}
    plain = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "plain", **options)
    annealed = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "annealed", anneal_last=True, **options)
    first = [ng.io.load_checkpoint(tmp_path / run / "checkpoints" / "gen_000001")[0] for run in ("plain", "annealed")]
    assert _params(first[0]) == _params(first[1])  # generation 1 trained at the members' own learning rates
    assert [c.graph.spec for c in plain] == [c.graph.spec for c in annealed]  # the same members in generation 2,
    assert _params(plain) != _params(annealed)  # trained otherwise
    totals = [json.loads((tmp_path / run / "summary.json").read_text())["totals"] for run in ("plain", "annealed")]
    assert totals[0]["train_examples"] == totals[1]["train_examples"] == 3 * 2 * 4 * N_TRAIN
    assert all(c.info["train_epochs"] == 4 for c in annealed)
    with pytest.raises(TypeError, match="anneal_last"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "bad", anneal_last="yes", **options)


def test_an_annealed_run_resumes_annealed_and_refuses_the_other_setting(key, tmp_path):
    options = {**SMALL, "epochs_per_generation": 2, "screening": 1}
    out = tmp_path / "run"
    ng.autofit.fit(X, Y, key=key, out_dir=out, anneal_last=True, **{**options, "max_generations": 1})
    assert json.loads((out / "run.json").read_text())["anneal_last"] is True
    resumed = ng.autofit.fit(X, Y, key=key, out_dir=out, **options)  # None: as the run started
    with pytest.raises(ng.autofit.RunDirectoryError, match="anneal_last=True, but this call has anneal_last=False"):
        ng.autofit.fit(X, Y, key=key, out_dir=out, anneal_last=False, **options)
    # generation 2 is the last now: it trained annealed, and generation 1 again at the members' own rates, so the
    # run is the one an uninterrupted run of 2 generations reaches
    straight = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "straight", anneal_last=True, **options)
    assert resumed.generation == straight.generation == 2
    assert _params(resumed) == _params(straight) and resumed.fitnesses == straight.fitnesses
    assert "starting again" in (out / "run.log").read_text()
    plain = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "plain", **options)
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["anneal_last"] is False
    assert _params(plain) != _params(straight)


def test_extending_a_finished_annealed_run_reaches_the_uninterrupted_run(key, tmp_path):
    options = {**SMALL, "epochs_per_generation": 2, "screening": 1, "anneal_last": True}
    out = tmp_path / "run"
    first = ng.autofit.fit(X, Y, key=key, out_dir=out, **{**options, "max_generations": 2})
    extended = ng.autofit.fit(X, Y, key=key, out_dir=out, **{**options, "max_generations": 3})
    straight = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "straight", **{**options, "max_generations": 3})
    assert extended.generation == straight.generation == 3
    assert [c.graph.spec for c in extended] == [c.graph.spec for c in straight]
    assert _params(extended) == _params(straight) and extended.fitnesses == straight.fitnesses
    assert "going on from generation 1 to train it again" in (out / "run.log").read_text()
    # the examples the annealed generation 2 took are spent: the totals count them
    spent = [
        json.loads((d / "summary.json").read_text())["totals"]["train_examples"] for d in (out, tmp_path / "straight")
    ]
    assert spent[0] == spent[1] + 3 * 2 * N_TRAIN
    assert _params(first) != _params(ng.io.load_checkpoint(out / "checkpoints" / "gen_000002")[0])


def test_a_longer_run_scales_its_screen_and_counts_it_as_the_generations_it_costs(key, tmp_path):
    # 12 generations: the screen's members train 12 // 6 = 2 times what they do in a 6-generation run (2 epochs
    # instead of 1); the extra epoch of 6 members is 2 epochs of a generation of 3 members: the screen counts as 2
    settings = {"population_size": 3, "epochs_per_generation": 2, "progress": False, "screening": 2}
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "long", max_generations=12, **settings)
    assert pop.generation == 11
    run = json.loads((tmp_path / "long" / "run.json").read_text())
    assert run["screen_scale"] == 2
    summary = json.loads((tmp_path / "long" / "summary.json").read_text())
    assert summary["stopped"] == "max_generations"
    assert summary["totals"]["train_examples"] == 3 * (10 * 2 + 2 * 2) * N_TRAIN  # 6 screened members: 2 epochs
    assert summary["totals"]["train_examples"] == search_budget(N_TRAIN, 3, 12, 2, screening=2)
    log = (tmp_path / "long" / "run.log").read_text()
    assert "each trained 2x a 6-generation run's screen: it counts as 2 generations" in log
    assert "so the run ends at generation 11" in log
    # a resume goes on with the screen it started with: one generation more to 13
    again = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "long", max_generations=13, **settings)
    assert again.generation == 12 and json.loads((tmp_path / "long" / "run.json").read_text())["screen_scale"] == 2
    # under a time budget the run has no planned length: the screen is a 6-generation run's
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "timed", max_generations=12, time_budget=1e-9, **settings)
    assert json.loads((tmp_path / "timed" / "run.json").read_text())["screen_scale"] == 1


def test_an_unscreened_run_records_no_screen_scale_and_an_older_record_resumes(key, tmp_path):
    from naivega_jax.autofit import FitSettings
    from naivega_jax.autofit._fit import _Job

    def scale(out, **settings):
        job = _Job.make(X, Y, None, key, out, FitSettings(max_generations=24, **settings), None, None)
        return job.screen_scale

    # a new run of 24 generations scales its screen 4x; without a screen there is nothing to scale
    assert scale(tmp_path / "new") == 4 and scale(tmp_path / "new", screening=1) == 1
    # a run that recorded another scale goes on with it, whatever its screening (a resume must agree on run.json)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text(json.dumps({"screening": 1, "screen_scale": 4}))
    assert scale(tmp_path / "old", screening=1) == 4


def test_the_screen_scale_and_what_it_counts_as():
    assert [screen_scale(g, None) for g in (1, 6, 11, 12, 23, 24)] == [1, 1, 1, 2, 3, 4]
    assert screen_scale(24, 60.0) == 1
    # MNIST-1D's default: 3,600 examples, 5 epochs a generation, a screen of 3 x 8 members
    assert screened_examples(3600, 5, 3, scale=4) == 8 * 3600
    assert screen_generations(3600, 5, 3, scale=1) == 1 and screen_generations(3600, 5, 3, scale=4) == 5
    assert search_budget(3600, max_generations=24) == 8 * (19 * 5 + 3 * 8) * 3600
    assert search_budget(3600, max_generations=11) == 8 * (10 * 5 + 3 * 2) * 3600  # unscaled below 12
    # less than an epoch a member: the share grows with the scale, and becomes whole epochs from one epoch on
    assert screened_examples(90, 2, 3, scale=1) == 60 and screened_examples(90, 2, 3, scale=2) == 90
    assert screened_examples(90, 1, 3, scale=2) == 60
