"""The random-search baseline: the search's own first-generation members, an equal share of the search's budget in
training examples each, and the same run directory, summary and budget accounting."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.cli import main

SMALL = ("--population", "3", "--epochs", "1", "--quiet")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    x, y, xt, yt = ng.datasets.load("digits")
    path = tmp_path_factory.mktemp("data") / "a.npz"
    np.savez(path, x_train=x[:150], y_train=y[:150], x_test=xt[:40], y_test=yt[:40])
    return path, None


def test_random_search_spends_the_searchs_budget_on_its_first_generations_members(digits, tmp_path, capsys):
    a, _ = digits
    search, rand = tmp_path / "search", tmp_path / "random"
    # an unscreened search (upstream's first generation): random search draws exactly its first generation
    assert (
        main(["fit", "--dataset", str(a), "--out", str(search), "--generations", "2", "--screening", "1", *SMALL]) == 0
    )
    argv = ["fit", "--dataset", str(a), "--out", str(rand), "--generations", "2", "--strategy", "random", *SMALL[:-1]]
    assert main(argv) == 0
    s, r = (json.loads((d / "summary.json").read_text()) for d in (search, rand))
    n_train = json.loads((search / "run.json").read_text())["n_train"]
    # 3 members x 2 generations x 1 epoch; random: the same 3 first members, 2 epochs each
    assert s["totals"]["train_examples"] == r["totals"]["train_examples"] == 6 * n_train
    assert s["totals"]["candidate_epochs"] == r["totals"]["candidate_epochs"] == 6
    assert r["generation"] == 1 and r["totals"]["evaluations"] == 3
    first = ng.io.load_checkpoint(ng.io.checkpoint_dir(search, 1))[0]
    drawn = ng.load_population(rand)
    assert [c.graph.spec for c in drawn] == [c.graph.spec for c in first]
    assert [c.optimiser for c in drawn] == [c.optimiser for c in first]
    assert json.loads((rand / "run.json").read_text())["strategy"] == {
        "name": "random",
        "members": 3,
        "budget": 6 * n_train,
        "epochs": 2,
    }
    assert "training examples in 6 candidate epochs" in capsys.readouterr().err


def test_random_search_checks_its_arguments_before_any_work(tmp_path):
    x, y, _, _ = ng.datasets.load("digits")
    for kwargs, message in (
        ({"members": 2}, "members must be an int >= 3"),
        ({"budget": 0}, "budget must be a positive int"),
        ({"budget": 1.5e5}, "budget must be a positive int"),
    ):
        with pytest.raises(ValueError, match=message):
            ng.random_search(jax.random.key(0), x[:150], y[:150], out_dir=tmp_path / "r", progress=False, **kwargs)
        assert not (tmp_path / "r").exists()


def test_search_budget_is_what_fit_spends():
    # the default screen: 24 members x 2 epochs, then 8 members x 5 epochs x 5 generations
    assert ng.autofit.search_budget(3600) == (24 * 2 + 8 * 5 * 5) * 3600
    assert ng.autofit.search_budget(3600, screening=1) == 8 * 6 * 5 * 3600
    assert ng.autofit.search_budget(100, population_size=3, max_generations=2, epochs=4, screening=1) == 2400
    assert ng.autofit.search_budget(100, population_size=3, max_generations=2, epochs=4) == (9 * 1 + 3 * 4) * 100
    with pytest.raises(ValueError, match="n_train must be a positive int"):
        ng.autofit.search_budget(0)
