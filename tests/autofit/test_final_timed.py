"""The final phase under a deadline plans its epochs step by step from the epoch time it measures."""

from __future__ import annotations

import time

import jax
import optax

import naivega_jax as ng
from naivega_jax.autofit._final import LR_STEPS, remaining_share_epochs, train_best

LOSS = optax.softmax_cross_entropy_with_integer_labels


def test_remaining_share_epochs_splits_what_is_left_by_the_steps_shares():
    assert [remaining_share_epochs(0, n) for n in (0, 1, 2, 10, 24)] == [0, 1, 1, 5, 12]
    assert [remaining_share_epochs(1, n) for n in (0, 1, 5, 12)] == [0, 1, 3, 7]
    assert [remaining_share_epochs(len(LR_STEPS) - 1, n) for n in (0, 1, 7)] == [0, 1, 7]


def test_a_pessimistic_epoch_time_does_not_leave_the_deadline_unused():
    x, y, _, _ = ng.datasets.load("digits")
    x, y = x[:400].reshape(400, -1), y[:400]
    inp = ng.input_vertex("in", shape=x.shape[1:])
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(10), inp))
    budget = 4.0
    # the search measured 1.8 s per epoch (its compile thread slowed it): 2 epochs seem to fit; an epoch takes ~ms
    info = {"train_epochs": 1, "train_seconds": budget / 2.2}
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=64, info=info)
    train_best(
        jax.random.key(1), cand, (x, y), (x[:50], y[:50]), loss=LOSS, epochs=None, deadline=time.monotonic() + budget
    )
    t0 = time.monotonic()
    trained, record = train_best(
        jax.random.key(1),
        cand,
        (x, y),
        (x[:50], y[:50]),
        loss=LOSS,
        epochs=None,
        deadline=t0 + budget,
    )
    wall = time.monotonic() - t0
    assert record["epochs"] > 2  # the first step measured the epoch time; the later steps used it
    assert [s["learning_rate_factor"] for s in record["steps"]] == [f for _, f in LR_STEPS]
    assert wall < budget + 2.0
    assert record["epochs"] == sum(s["epochs"] for s in record["steps"])
    assert record["train_examples"] == record["epochs"] * 400
    assert trained.info["final"] is record


def test_a_deadline_with_no_time_for_one_epoch_trains_nothing():
    seconds = 100.0
    x, y, _, _ = ng.datasets.load("digits")
    x, y = x[:100].reshape(100, -1), y[:100]
    inp = ng.input_vertex("in", shape=x.shape[1:])
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(10), inp))
    cand = ng.Candidate(
        graph, optimiser=ng.Adam(1e-3), batch_size=64, info={"train_epochs": 1, "train_seconds": seconds}
    )
    _, record = train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, deadline=time.monotonic() + 1.0)
    assert record["epochs"] == 0 and record["steps"] == []


def test_the_epoch_time_comes_from_the_examples_a_screened_member_trained_on():
    x, y, _, _ = ng.datasets.load("digits")
    x, y = x[:100].reshape(100, -1), y[:100]
    inp = ng.input_vertex("in", shape=x.shape[1:])
    graph = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(10), inp))
    # one "epoch" of a tenth of the data took 1/8 of the time left: a whole epoch takes longer than all of it
    info = {"train_epochs": 1, "train_examples": 10, "train_seconds": 2.0 / 8}
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=64, info=info)
    _, record = train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, deadline=time.monotonic() + 2.0)
    assert record["epochs"] == 0
