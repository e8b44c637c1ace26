"""A cheap, real 3-generation search shared by the executor tests and benchmarks/bench_distributed.py.

Digits (a few hundred examples, flattened to 64 features), small Dense graphs trained by ``TrainThenFitness`` and
scored by ``AccuracyFitness``; the elite is kept and three offspring get a width change and a learning-rate change,
so specs, parameters and optimisers all differ between members and generations.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import jax
import numpy as np

import naivega_jax as ng


def digits(n_train: int = 300, n_val: int = 200):
    x_tr, y_tr, _, _ = ng.datasets.load("digits")
    x = x_tr.reshape(len(x_tr), -1)
    return (x[:n_train], y_tr[:n_train]), (x[n_train : n_train + n_val], y_tr[n_train : n_train + n_val])


def mlp(key, hidden: int):
    inp = ng.input_vertex("in", shape=(64,))
    h = ng.vertex("h", ng.Dense(hidden, activation="relu"), inp)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(10), h))


def population(key, widths=(8, 12, 16, 20)):
    keys = jax.random.split(key, len(widths))
    return ng.Population(
        [ng.Candidate(mlp(k, w), optimiser=ng.Adam(1e-2), batch_size=32) for k, w in zip(keys, widths)]
    )


def fitness(n_train: int = 300, n_val: int = 200, validate: bool = True):
    """Trains one epoch, then scores validation accuracy; or (``validate=False``, half the compiles) the training
    accuracy recorded while training (``TrainAccuracyFitness``)."""
    train, val = digits(n_train, n_val)
    if not validate:
        return ng.TrainAccuracyFitness(train, drop=0.0)
    return ng.TrainThenFitness(train, fitness=ng.AccuracyFitness(val, batch_size=100))


def strategy(structural: bool = True):
    """Keeps the elite; three offspring by SUS get a learning-rate change and, if ``structural``, a width change."""
    if structural:
        mutate = ng.MapCandidate(ng.VertexMutation(ng.NoutMutation(-0.3, 0.3)), ng.LearningRateMutation())
    else:
        mutate = ng.MapCandidate(ng.LearningRateMutation())
    return ng.CombinedEvolution(ng.EliteSelection(1), ng.SusSelection(3, ng.EvolveCandidates(mutate)))


def run(key, fit, executor=None, generations: int = 3, widths=(8, 12, 16, 20), structural: bool = True):
    """Evolves ``generations`` times, then scores the last population: every member has a fitness.

    With ``structural=False`` and equal ``widths`` every member shares one spec: one compile per process/device.
    """
    init_key, key = jax.random.split(key)
    pop = population(init_key, widths)
    for _ in range(generations):
        key, sub = jax.random.split(key)
        pop = ng.evolve(sub, strategy(structural), fit, pop, executor=executor)
    return ng.evolution.evaluate(key, fit, pop, executor=executor)


def summary(pop) -> dict:
    """What two runs must agree on: specs (JSON), fitnesses, optimisers, batch sizes, every array."""
    out = {
        "specs": [ng.to_json(c.graph.spec) for c in pop],
        "fitness": [c.fitness for c in pop],
        "optimisers": [repr(c.optimiser) for c in pop],
        "batch_sizes": [c.batch_size for c in pop],
        "failures": [c.info.get("failure") for c in pop],
    }
    out["arrays"] = [[np.asarray(a) for a in jax.tree_util.tree_leaves(c.graph)] for c in pop]
    return out


def assert_same(a: dict, b: dict, atol: float = 1e-6) -> None:
    for field in ("specs", "fitness", "optimisers", "batch_sizes", "failures"):
        assert a[field] == b[field], field
    for xs, ys in zip(a["arrays"], b["arrays"], strict=True):
        assert len(xs) == len(ys)
        for x, y in zip(xs, ys):
            np.testing.assert_allclose(x, y, rtol=0, atol=atol)


@dataclasses.dataclass(frozen=True, eq=False)
class KillOnce:
    """Kills the process that evaluates member ``index`` of generation ``generation`` (SIGKILL: no clean-up),
    once: the first attempt leaves ``flag`` behind, so a retry scores normally with ``fitness``."""

    fitness: object
    flag: str
    generation: int = 2

    def __call__(self, key, candidate):
        if candidate.generation == self.generation and not Path(self.flag).exists():
            Path(self.flag).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fitness(key, candidate)


@dataclasses.dataclass(frozen=True, eq=False)
class KillAlways:
    """Kills the process whenever it evaluates a member of width ``width`` in its hidden layer."""

    fitness: object
    width: int

    def __call__(self, key, candidate):
        if candidate.graph.nout("h") == self.width:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fitness(key, candidate)


@dataclasses.dataclass(frozen=True, eq=False)
class WhereFitness:
    """Records where the member's arrays were and which default device its thread had, then scores it."""

    fitness: object

    def __call__(self, key, candidate):
        devices = sorted({d.id for a in jax.tree_util.tree_leaves(candidate.graph) for d in a.devices()})
        where = {"arrays": devices, "default": getattr(jax.config.jax_default_device, "id", None)}
        scored = self.fitness(key, candidate)
        return scored.replace(info={**scored.info, "where": where})


def kill_self(item):
    """A plain function whose process dies."""
    os.kill(os.getpid(), signal.SIGKILL)
