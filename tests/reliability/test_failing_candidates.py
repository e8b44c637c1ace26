"""Failing candidates: NaN/Inf loss, out of device memory, an exception in a user fitness, and a size change the
solver cannot make. Each is injected; the generation completes, the candidate gets the invalid fitness (or, for the
solver, keeps its graph) and the reason is in ``candidate.info["failure"]``, the checkpoint and the log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import naivega_jax as ng
from naivega_jax.evolution import _train_fitness
from naivega_jax.io import checkpoint_dir

OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 4294967296 bytes."
_real_train_graph = _train_fitness.train_graph


def blobs(n=64, features=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int32) % 2
    x = rng.standard_normal((n, features)).astype(np.float32) + 3 * y[:, None]
    return x, y


def mlp():
    inp = ng.input_vertex("in", shape=(4,))
    h = ng.vertex("h", ng.Dense(5, "relu"), inp)
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(2), h))


class FlakyTrain:
    """``train_graph`` that raises ``error`` (an XLA runtime error by default) where ``fail(graph, batch_size)``;
    ``fail`` may be a set of batch sizes."""

    def __init__(self, fail, error=None):
        self.fail = fail if callable(fail) else (lambda graph, batch_size: batch_size in fail)
        self.error = error or (lambda: jax.errors.JaxRuntimeError(OOM))
        self.calls = []

    def __call__(self, key, graph, x, y, **kwargs):
        self.calls.append(kwargs["batch_size"])
        if self.fail(graph, kwargs["batch_size"]):
            raise self.error()
        return _real_train_graph(key, graph, x, y, **kwargs)


@pytest.fixture
def flaky(monkeypatch):
    def install(*args, **kwargs):
        train = FlakyTrain(*args, **kwargs)
        monkeypatch.setattr(_train_fitness, "train_graph", train)
        return train

    return install


def _fitness(x, y, **kwargs):
    score = ng.AccuracyFitness((x, y))
    return ng.TrainThenFitness((x, y), fitness=score, default_optimiser=ng.SGD(0.1), **kwargs)


def _leaves_equal(a, b):
    return all(
        np.asarray(u).tobytes() == np.asarray(v).tobytes()
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


# --- out of memory --------------------------------------------------------------------------------------------
def test_out_of_memory_is_retried_once_at_half_the_batch_size(flaky, caplog):
    x, y = blobs()
    key = jax.random.key(3)
    expected = _fitness(x, y)(key, ng.Candidate(mlp(), batch_size=16))  # what training at 16 gives
    train = flaky({32})
    with caplog.at_level(logging.WARNING, logger="naivega_jax"):
        got = _fitness(x, y)(key, ng.Candidate(mlp(), batch_size=32))
    assert train.calls == [32, 16]
    assert got.batch_size == 16 and got.fitness == expected.fitness and "failure" not in got.info
    assert _leaves_equal(got.graph, expected.graph)  # the retry trained exactly as a batch-16 candidate
    note = got.info["out_of_memory"]
    assert "out of memory at batch size 32" in note and "RESOURCE_EXHAUSTED" in note
    assert "trained at batch size 16" in note
    assert "retrying at batch size 16" in caplog.text


def test_out_of_memory_twice_gives_the_invalid_fitness_and_both_reasons(flaky, caplog):
    x, y = blobs()
    train = flaky({32, 16})
    cand = ng.Candidate(mlp(), batch_size=32)
    with caplog.at_level(logging.WARNING, logger="naivega_jax"):
        got = _fitness(x, y, invalid_fitness=-1.0)(jax.random.key(3), cand)
    assert train.calls == [32, 16]
    assert got.fitness == -1.0 and got.graph is cand.graph and got.batch_size == 32
    failure = got.info["failure"]
    assert "out of memory at batch size 32" in failure and "out of memory at batch size 16" in failure
    assert failure.count("RESOURCE_EXHAUSTED") == 2 and "JaxRuntimeError" in failure
    assert failure in caplog.text


def test_out_of_memory_at_batch_size_1_is_not_retried(flaky):
    x, y = blobs()
    train = flaky({1})
    got = _fitness(x, y)(jax.random.key(3), ng.Candidate(mlp(), batch_size=1))
    assert train.calls == [1] and got.fitness == 0.0
    assert got.info["failure"].startswith("out of memory at batch size 1 (JaxRuntimeError: RESOURCE_EXHAUSTED")


def test_memory_error_counts_and_train_accuracy_fitness_retries_too(flaky):
    x, y = blobs()
    train = flaky({8}, error=lambda: MemoryError("host allocation failed"))
    f = ng.TrainAccuracyFitness((x, y), default_optimiser=ng.SGD(0.1))
    got = f(jax.random.key(1), ng.Candidate(mlp(), batch_size=8))
    assert train.calls == [8, 4] and got.batch_size == 4 and 0.0 <= got.fitness <= 1.0
    assert "MemoryError: host allocation failed" in got.info["out_of_memory"]


def test_other_runtime_errors_are_not_retried_and_evaluate_records_them(flaky):
    x, y = blobs()
    train = flaky({32}, error=lambda: jax.errors.JaxRuntimeError("INVALID_ARGUMENT: bad shapes"))
    f = _fitness(x, y)
    with pytest.raises(jax.errors.JaxRuntimeError, match="INVALID_ARGUMENT"):
        f(jax.random.key(0), ng.Candidate(mlp(), batch_size=32))
    assert train.calls == [32]
    pop = ng.evolution.evaluate(jax.random.key(0), f, ng.Population([ng.Candidate(mlp(), batch_size=32)]))
    assert pop[0].fitness == 0.0
    assert pop[0].info["failure"] == "JaxRuntimeError: INVALID_ARGUMENT: bad shapes"


def test_a_real_xla_out_of_memory_is_caught(tmp_path):
    """A real RESOURCE_EXHAUSTED from XLA:CPU (address space capped with ulimit) in a subprocess: one candidate's
    batch needs gigabytes at its batch size and at half of it, so it gets the invalid fitness with XLA's message;
    a small candidate in the same generation then trains normally."""
    script = textwrap.dedent(
        """
        import jax, numpy as np, naivega_jax as ng
        inp = ng.input_vertex("in", shape=(4,))
        wide = ng.vertex("h", ng.Dense(2**14, "relu"), inp)
        big = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(2), wide))
        small = ng.build_graph(jax.random.key(0), inputs=inp,
                               outputs=ng.vertex("out", ng.Dense(2), ng.vertex("h", ng.Dense(8, "relu"), inp)))
        x = np.ones((64, 4), np.float32); y = np.arange(64, dtype=np.int32) % 2
        f = ng.TrainThenFitness((x, y), fitness=ng.AccuracyFitness((x, y)), invalid_fitness=-1.0)
        pop = ng.Population([ng.Candidate(big, batch_size=2**17), ng.Candidate(small, batch_size=16)])
        pop = ng.evolution.evaluate(jax.random.key(0), f, pop)
        print(repr(pop[0].fitness), pop[0].info.get("failure"))
        print(repr(pop[1].fitness), "failure" in pop[1].info)
        """
    )
    # 2**17 x 2**14 float32 activations are 8 GiB (4 GiB at half the batch): far above the cap
    cmd = f"ulimit -v 6000000 && exec {sys.executable} -c '{script}'"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}  # a GPU runtime reserves more address space than the cap
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = out.stdout.strip().splitlines()[-2:]
    assert first.startswith("-1.0 out of memory at batch size 131072 (") and "batch size 65536" in first
    assert first.count("RESOURCE_EXHAUSTED") == 2
    fitness, failed = second.split()
    assert 0.0 <= float(fitness) <= 1.0 and failed == "False"


# --- every kind in one run of fit ------------------------------------------------------------------------------
def _nan_loss(outputs, labels):
    return optax.softmax_cross_entropy_with_integer_labels(outputs, labels) * jnp.nan


def _name(c: ng.Candidate) -> str:
    return next(e["name"] for e in c.lineage if e["event"] == "created")


@dataclasses.dataclass(frozen=True)
class Injected:
    """The run's fitness, with a failure injected into generation 1 by candidate name."""

    inner: ng.TrainThenFitness

    def __call__(self, key, c):
        if c.generation == 1 and _name(c) == "model1":
            return dataclasses.replace(self.inner, loss=_nan_loss)(key, c)
        if c.generation == 1 and _name(c) == "model3":
            raise ValueError("user fitness exploded on purpose")
        return self.inner(key, c)


def _size_cycle_space():
    """Dense(4) then a residual over a 2-way fork of Dense(2): removing a fork path leaves a size cycle
    (the concat would have 2 + 4 inputs, the add needs 4) that no size assignment can fix."""
    dense = lambda n, act: ng.VertexSpace(ng.DenseSpace(n, act))
    out = ng.VertexSpace(ng.DenseSpace(10, "identity"), shielded=True)
    fork = ng.ResidualArchSpace(ng.ForkArchSpace(dense(2, "relu"), 2))
    return ng.ArchSpaceChain(ng.GlobalPoolSpace("mean"), dense(4, "relu"), fork, out)


def test_fit_completes_generations_with_every_failure_kind(tmp_path, flaky, caplog):
    x, y, _, _ = ng.datasets.load("digits")
    x, y = x[:150], y[:150]
    inner = ng.TrainThenFitness((x, y), fitness=ng.AccuracyFitness((x, y)), invalid_fitness=0.0)
    seen = set()

    def out_of_memory(graph, batch_size):  # model2 at every batch size; model4 at its first try only
        first = graph.spec not in seen
        seen.add(graph.spec)
        return graph.output_names[0].startswith("model2.") or (graph.output_names[0].startswith("model4.") and first)

    flaky(out_of_memory)
    remove_path2 = ng.VertexMutation(
        ng.MutationFilter(lambda g, n: n.endswith(".res.path2"), ng.RemoveVertexMutation())
    )
    evolution = ng.CombinedEvolution(
        ng.EliteSelection(1), ng.SusSelection(3, ng.EvolveCandidates(ng.MapCandidate(remove_path2)))
    )
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="naivega_jax"):
        pop = ng.autofit.fit(
            x,
            y,
            key=jax.random.key(0),
            out_dir=out,
            population_size=4,
            max_generations=2,
            space=_size_cycle_space(),
            fitness=Injected(inner),
            evolution=evolution,
            progress=False,
        )
    assert pop.generation == 2 and all(c.fitness is not None for c in pop)

    gen1, _, extra = ng.io.load_checkpoint(checkpoint_dir(out, 1))
    assert extra["complete"] is True
    by_name = {_name(c): c for c in gen1}
    failures = {n: c.info.get("failure") for n, c in by_name.items()}
    assert failures["model1"] == "NaN loss detected when training!"
    assert failures["model2"].count("RESOURCE_EXHAUSTED") == 2
    assert failures["model3"] == "ValueError: user fitness exploded on purpose"
    assert failures["model4"] is None
    assert all(by_name[n].fitness == 0.0 for n in ("model1", "model2", "model3"))
    assert by_name["model4"].fitness > 0.0 and "out_of_memory" in by_name["model4"].info
    stored = json.loads((checkpoint_dir(out, 1) / "population.json").read_text())
    assert sorted(m["info"].get("failure", "") for m in stored["candidates"]) == sorted(
        f or "" for f in failures.values()
    )
    for reason in (failures["model1"], failures["model3"], "out of memory at batch size"):
        assert reason in caplog.text
    run_log = (out / "run.log").read_text()
    assert "user fitness exploded on purpose" in run_log and "RESOURCE_EXHAUSTED" in run_log

    # generation 2: every removal hit the size cycle, was refused with a warning, and the graphs are unchanged
    assert "Size cycle detected!" in caplog.text and "Size cycle detected!" in run_log
    specs1 = {c.graph.spec for c in gen1}
    assert all(c.graph.spec in specs1 for c in pop)
    assert any(e["event"] == "fitness" and e["generation"] == 2 for c in pop for e in c.lineage)
