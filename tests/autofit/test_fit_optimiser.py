"""fit(optimiser=...) trains every member with one optimiser (a spec or plain optax); fit(keep_optimiser_state=True)
continues each member's optimiser state across generations, and checkpoints keep it."""

import json

import jax
import numpy as np
import optax
import pytest

import naivega_jax as ng

RNG = np.random.default_rng(0)
X = RNG.normal(size=(240, 6)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
SMALL = {"population_size": 3, "max_generations": 2, "epochs_per_generation": 1, "progress": False}


def test_one_optax_optimiser_trains_every_member(key, tmp_path):
    tx = optax.adamw(3e-3)
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", optimiser=tx, **SMALL)
    assert all(c.optimiser is None for c in pop)
    assert max(c.fitness for c in pop) > 0.6
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["optimiser"] == "optax" and run["keep_optimiser_state"] is True  # fit's default for a new run
    # a resume must say the same: drawn optimisers are another run
    with pytest.raises(ng.autofit.RunDirectoryError, match="optimiser='optax'"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", **{**SMALL, "max_generations": 3})


def test_an_optimiser_spec_is_recorded_and_members_start_without_their_own(key, tmp_path):
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", optimiser=ng.Adam(3e-3), **SMALL)
    assert all(c.optimiser is None for c in pop)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["optimiser"] == ng.Adam(3e-3).to_dict()


def test_kept_optimiser_states_survive_generations_and_checkpoints(key, tmp_path):
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", keep_optimiser_state=True, **SMALL)
    assert all(c.opt_state is not None for c in pop)
    loaded = ng.load_population(tmp_path / "run")
    for a, b in zip(sorted(loaded, key=lambda c: c.fitness), sorted(pop, key=lambda c: c.fitness)):
        for u, v in zip(jax.tree_util.tree_leaves(a.opt_state), jax.tree_util.tree_leaves(b.opt_state)):
            np.testing.assert_array_equal(u, v)
    # the state counts every step a member took: the elites' go on from generation 1
    counts = [int(jax.tree_util.tree_leaves(c.opt_state)[0]) for c in pop]
    steps = [c.info["train_steps"] for c in pop]
    assert all(n >= s for n, s in zip(counts, steps)) and any(n > s for n, s in zip(counts, steps))


def test_bad_optimiser_arguments_are_refused_before_work(key, tmp_path):
    with pytest.raises(TypeError, match=r"fit: optimiser must be None, an optimiser spec .* got 'adam'"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "a", optimiser="adam", **SMALL)
    with pytest.raises(TypeError, match="keep_optimiser_state must be None, True or False, got 1"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "b", keep_optimiser_state=1, **SMALL)
    own = ng.TrainThenFitness((X, Y), fitness=lambda k, c: c.replace(fitness=0.5))
    with pytest.raises(ValueError, match="with a fitness of your own"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "c", fitness=own, optimiser=ng.SGD(0.1), **SMALL)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_fit_returns_its_summary_with_the_population(key, tmp_path):
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", **SMALL)
    summary = pop.info["summary"]
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["fitness"] == pop[0].fitness
    assert ng.evolve(key, ng.autofit.default_evolution(3), ng.SizeFitness(), pop).info == {}


def test_a_resumed_run_keeps_the_optimiser_state_setting_it_started_with(key, tmp_path):
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", keep_optimiser_state=False, **SMALL)
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", **{**SMALL, "max_generations": 3})
    assert pop.generation == 3 and all(c.opt_state is None for c in pop)  # upstream's fresh state, as it started
    with pytest.raises(ng.autofit.RunDirectoryError, match=r"keep_optimiser_state=False, but this call has .*True"):
        ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", keep_optimiser_state=True, **SMALL)
    # a run directory written before the setting existed resumes as upstream did
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    del run["keep_optimiser_state"]
    (tmp_path / "run" / "run.json").write_text(json.dumps(run))
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", **{**SMALL, "max_generations": 4})
    assert pop.generation == 4 and all(c.opt_state is None for c in pop)
