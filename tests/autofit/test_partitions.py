"""fit on data too large for an epoch per generation: each generation trains one epoch of the next part of it."""

import json

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit import _data as data_module
from naivega_jax.autofit import search_budget

RNG = np.random.default_rng(1)
X = RNG.normal(size=(240, 6)).astype(np.float32)
Y = (X[:, 0] - 0.5 * X[:, 2] > 0).astype(np.int32)
N_TRAIN = 216  # fit's validation split keeps the last 10%
SMALL = {"population_size": 3, "progress": False}


@pytest.fixture
def per_generation(monkeypatch):
    """A generation of 72 examples, so that these 216 are 3 parts (the default is 18,000: Fashion-MNIST is 3)."""
    monkeypatch.setattr(data_module, "SAMPLES_PER_GENERATION", 72)
    assert ng.autofit.default_partitions(N_TRAIN) == 3 and ng.autofit.default_epochs(N_TRAIN) == 1


def _examples(out):
    return json.loads((out / "summary.json").read_text())["totals"]["train_examples"]


def test_generations_move_on_through_the_parts_and_the_budget_counts_them(per_generation, key, tmp_path):
    pop = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "run", max_generations=3, **SMALL)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["partitions"] == 3
    # the screen: 9 members on a third of the first part each; then 3 members a generation on one part of 72
    assert _examples(tmp_path / "run") == 9 * 24 + 2 * 3 * 72 == search_budget(N_TRAIN, 3, 3)
    assert all(c.info["train_examples"] == 72 and c.info["train_epochs"] == 1 for c in pop)
    # candidate epochs are passes over the training split: a part is a third of one, not a whole epoch
    totals = json.loads((tmp_path / "run" / "summary.json").read_text())["totals"]
    assert totals["candidate_epochs"] == pytest.approx(totals["train_examples"] / N_TRAIN) == pytest.approx(3.0)
    # whole epochs when epochs_per_generation is given
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "whole", max_generations=2, epochs_per_generation=1, **SMALL)
    assert json.loads((tmp_path / "whole" / "run.json").read_text())["partitions"] == 1
    assert _examples(tmp_path / "whole") == 9 * 72 + 3 * N_TRAIN == search_budget(N_TRAIN, 3, 2, 1)


def test_a_resume_goes_on_with_the_parts_it_started_with(per_generation, key, tmp_path):
    full = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "full", max_generations=3, **SMALL)
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "split", max_generations=2, **SMALL)
    # a resume reaches the population an uninterrupted run does
    again = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "split", max_generations=3, **SMALL)
    assert [c.graph.spec for c in again] == [c.graph.spec for c in full]
    leaves = lambda pop: [a for c in pop for a in jax.tree_util.tree_leaves(c.graph.params)]
    assert all(np.array_equal(a, b) for a, b in zip(leaves(again), leaves(full)))
    # epochs given to a resume keep the parts: 2 epochs of the next part
    more = ng.autofit.fit(
        X, Y, key=key, out_dir=tmp_path / "split", max_generations=4, epochs_per_generation=2, **SMALL
    )
    assert all(c.info["train_examples"] == 2 * 72 for c in more)
    # a run from before parts trained whole epochs: its run.json has no "partitions", and it resumes so
    ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "old", max_generations=1, **SMALL)
    path = tmp_path / "old" / "run.json"
    doc = json.loads(path.read_text())
    del doc["partitions"]
    path.write_text(json.dumps(doc))
    old = ng.autofit.fit(X, Y, key=key, out_dir=tmp_path / "old", max_generations=2, **SMALL)
    assert all(c.info["train_examples"] == N_TRAIN for c in old)
