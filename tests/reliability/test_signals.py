"""SIGINT and SIGTERM during ``ng.autofit.fit`` (in this process; the command line's are tested on a real
subprocess in test_kill_resume.py): the candidate in progress is dropped, the members scored before are kept,
summary.json says why the run stopped, the handlers come back afterwards, and a resumed run ends with the population
of an uninterrupted one."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time

import jax
import numpy as np
import pytest

import naivega_jax as ng


class _SignalOnCall:
    """SizeFitness that sends ``sig`` to this process during its ``at``-th call (once per instance), mid-evaluation."""

    def __init__(self, sig: int, at: int):
        self.sig, self.at, self.calls = sig, at, 0

    def __call__(self, key, candidate):
        self.calls += 1
        if self.calls == self.at:
            self.send()
        return ng.SizeFitness()(key, candidate)

    def send(self):
        os.kill(os.getpid(), self.sig)
        for _ in range(1000):  # the handler runs between bytecodes: here, inside this member's evaluation
            pass


class _SignalInGarbageCollection(_SignalOnCall):
    """As ``_SignalOnCall``, but the signal arrives in a garbage collector's callback: the handler runs inside the
    callback, where Python drops any exception it raises (as with JAX's own gc callback)."""

    def send(self):
        def callback(phase, info):
            gc.callbacks.remove(callback)
            super(_SignalInGarbageCollection, self).send()  # the handler runs here, inside the callback

        gc.callbacks.append(callback)
        gc.collect()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the rest of this member's evaluation, where the stop must land
            pass
        raise AssertionError("the signal did not stop this member's evaluation")


@pytest.fixture(autouse=True)
def sigint_as_in_a_terminal():
    """SIGINT handled as in a terminal's foreground job. A test process started in the background by a shell
    without job control inherits SIGINT ignored, and fit rightly leaves an ignored signal ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def data():
    x, y, _, _ = ng.datasets.load("digits")
    return x[:150], y[:150]


def _fit(data, out, fitness, generations=3):
    x, y = data
    return ng.autofit.fit(
        x,
        y,
        key=jax.random.key(3),
        out_dir=out,
        population_size=4,
        max_generations=generations,
        fitness=fitness,
        progress=False,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_generation_keeps_the_scored_members_and_resume_ends_like_an_uninterrupted_run(
    data, tmp_path, sig
):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # the 6th evaluation is the 2nd member of generation 2: one member of it is scored, the 2nd is dropped
    _fit(data, tmp_path / "stopped", _SignalOnCall(sig, at=6))
    assert {s: signal.getsignal(s) for s in before} == before
    summary = json.loads((tmp_path / "stopped" / "summary.json").read_text())
    assert summary["stopped"] == sig.name and summary["generation"] == 2
    population, _, extra, _ = ng.io.load_run_checkpoint(tmp_path / "stopped")
    assert population.generation == 2 and extra["complete"] is False and extra["evaluated"] == [0]
    scored_in_2 = [any(e.get("event") == "fitness" and e.get("generation") == 2 for e in c.lineage) for c in population]
    assert scored_in_2 == [True, False, False, False]

    resumed = _fit(data, tmp_path / "stopped", ng.SizeFitness())
    straight = _fit(data, tmp_path / "straight", ng.SizeFitness())
    assert resumed.generation == straight.generation == 3
    assert [c.graph.spec for c in resumed] == [c.graph.spec for c in straight]
    assert resumed.fitnesses == straight.fitnesses
    for a, b in zip(resumed, straight, strict=True):
        for u, v in zip(jax.tree_util.tree_leaves(a.graph), jax.tree_util.tree_leaves(b.graph), strict=True):
            assert np.asarray(u).tobytes() == np.asarray(v).tobytes()


def test_a_signal_outside_training_lets_the_work_in_hand_finish_then_stops_before_evolving(data, tmp_path):
    x, y = data
    calls = []

    def callback(population):  # runs after generation 1's checkpoint, outside any candidate's training
        calls.append(population.generation)
        os.kill(os.getpid(), signal.SIGINT)

    ng.autofit.fit(
        x,
        y,
        key=jax.random.key(3),
        out_dir=tmp_path,
        population_size=4,
        max_generations=3,
        fitness=ng.SizeFitness(),
        callbacks=[callback],
        progress=False,
    )
    assert calls == [1]
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == "SIGINT"
    population, _, extra, _ = ng.io.load_run_checkpoint(tmp_path)
    assert population.generation == 1 and extra["complete"] is True


def test_an_ignored_signal_stays_ignored(data, tmp_path):
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _fit(data, tmp_path, _SignalOnCall(signal.SIGTERM, at=2), generations=1)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == "max_generations"


def test_a_signal_that_arrives_in_a_garbage_collector_callback_still_stops_the_candidate_in_progress(
    data, tmp_path, monkeypatch
):
    # before: the handler's exception, raised inside JAX's gc callback, was printed as "Exception ignored ... Traceback"
    # and dropped, so the candidate in progress finished instead of being dropped
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    _fit(data, tmp_path, _SignalInGarbageCollection(signal.SIGTERM, at=6))
    assert sys.unraisablehook == reported.append
    assert reported == []
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == "SIGTERM"
    population, _, extra, _ = ng.io.load_run_checkpoint(tmp_path)
    assert population.generation == 2 and extra["complete"] is False and extra["evaluated"] == [0]


def test_other_unraisable_exceptions_still_reach_the_previous_hook(data, tmp_path, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    class Noisy:
        def __del__(self):
            raise ValueError("from __del__")

    def fitness(key, candidate):
        Noisy()
        return ng.SizeFitness()(key, candidate)

    _fit(data, tmp_path, fitness, generations=1)
    assert [type(r.exc_value) for r in reported] == [ValueError] * 4
