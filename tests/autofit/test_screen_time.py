"""A screen under a time budget gives its members equal training seconds: a member faster per example than the
screen's median trains on more examples, a slower one on fewer, each in chunks of a third of the screen's examples."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.autofit._run import screening_fitness
from naivega_jax.autofit._screen import EqualTimeScreen, extra_chunks

RNG = np.random.default_rng(0)
X = RNG.normal(size=(600, 6)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)


class _Clocked(ng.TrainThenFitness):
    """Reports the training seconds of a member whose ``info["seconds_per_example"]`` says its speed."""

    def __call__(self, key, candidate):
        trained = super().__call__(key, candidate)
        seconds = candidate.info["seconds_per_example"] * trained.info["train_examples"]
        return trained.replace(info={**trained.info, "train_seconds": seconds})


def _member(key, speed):
    inp = ng.input_vertex("in", shape=(6,))
    graph = ng.build_graph(key, inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
    return ng.Candidate(graph, optimiser=ng.Adam(1e-2), batch_size=10, info={"seconds_per_example": speed})


def test_members_train_for_the_seconds_of_the_median_member(key):
    scored = []

    def score(k, c):
        scored.append(c.info["train_examples"])
        return c.replace(fitness=ng.evaluate_accuracy(c.graph, X[500:], Y[500:]))

    screen = EqualTimeScreen(_Clocked((X[:60], Y[:60]), fitness=score, keep_optimiser_state=True), X[:500], Y[:500], 60)
    assert screen.chunk == 20 and screen.limit == 8  # at most 3 x 60 examples: 9 chunks
    # the first member is its own reference: the screen's 60 examples; then a member twice as slow against the median
    # of (1, 2) trains 2 chunks, one four times as fast as the median of (1, 2, 0.25) trains 9 (the most: 3 x 60)
    out = [screen(jax.random.fold_in(key, i), _member(jax.random.key(i), s)) for i, s in enumerate((1.0, 2.0, 0.25))]
    assert [c.info["train_examples"] for c in out] == scored == [60, 40, 180]
    assert [c.info["train_steps"] for c in out] == [6, 4, 18]
    assert [c.info["train_seconds"] for c in out] == pytest.approx([60.0, 80.0, 45.0])
    assert screen.seconds_per_example == [1.0, 2.0, 0.25]
    assert all(0.0 <= c.fitness <= 1.0 for c in out)
    # the optimiser state runs on through the chunks: Adam's count is the member's steps
    assert [int(jax.tree_util.tree_leaves(c.opt_state)[0]) for c in out] == [6, 4, 18]


def test_the_chunks_are_the_next_examples_of_the_training_data(key):
    seen = []

    class Recording(_Clocked):
        def __call__(self, k, candidate):
            seen.append(np.asarray(self.train_data[0])[:, 0].copy())
            return super().__call__(k, candidate)

    screen = EqualTimeScreen(Recording((X[:60], Y[:60]), fitness=lambda k, c: c), X[:500], Y[:500], 60)
    screen(key, _member(key, 1.0))
    assert np.array_equal(np.concatenate(seen), X[:60, 0])
    seen.clear()
    screen(key, _member(key, 0.5))  # twice as fast as the median of (1, 0.5): 4.5 chunks' time -> 5 chunks
    assert np.array_equal(np.concatenate(seen), X[:100, 0])


def test_extra_chunks_rounds_the_time_left_to_chunks_and_keeps_to_the_limit():
    assert extra_chunks(1.0, 3.0, 8) == 2
    assert extra_chunks(1.0, 3.4, 8) == 2 and extra_chunks(1.0, 3.6, 8) == 3
    assert extra_chunks(5.0, 3.0, 8) == 0  # slower than the whole reference: the first chunk only
    assert extra_chunks(0.01, 3.0, 8) == 8
    assert extra_chunks(0.0, 3.0, 8) == 8  # no time measured (a clock's resolution): as fast as can be


def test_a_timed_screen_of_part_of_an_epoch_gives_equal_time_and_an_untimed_one_equal_examples():
    fitness = ng.TrainThenFitness((X, Y), fitness=lambda k, c: c, epochs=1)
    timed = screening_fitness(fitness, 3, equal_time=True)
    assert isinstance(timed, EqualTimeScreen) and timed.examples == 200 and timed.chunk == 66
    untimed = screening_fitness(fitness, 3)
    assert isinstance(untimed, ng.TrainThenFitness) and len(untimed.train_data[0]) == 200
    # a screen of whole epochs stays one of equal examples
    whole = screening_fitness(dataclasses.replace(fitness, epochs=6), 3, equal_time=True)
    assert isinstance(whole, ng.TrainThenFitness) and whole.epochs == 2


def test_a_run_under_a_time_budget_counts_what_its_equal_time_screen_trained(key, tmp_path):
    x, y = np.concatenate([X] * 4), np.concatenate([Y] * 4)  # 2,160 training examples
    kw = dict(key=key, population_size=3, max_generations=1, epochs_per_generation=1, progress=False)
    pop = ng.autofit.fit(x, y, out_dir=tmp_path, time_budget=600, **kw)
    assert len(pop) == 9
    examples = [c.info["train_examples"] for c in pop]
    # a screen member's share is a third of an epoch, 720 examples, trained in chunks of 240, at most 3 x 720
    assert all(e % 240 == 0 and 240 <= e <= 2160 for e in examples), examples
    totals = json.loads((tmp_path / "summary.json").read_text())["totals"]
    assert totals["train_examples"] == sum(examples)
    untimed = ng.autofit.fit(x, y, out_dir=tmp_path / "untimed", **kw)
    assert [c.info["train_examples"] for c in untimed] == [720] * 9
