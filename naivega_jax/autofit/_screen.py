"""A screen under a time budget: every member trains for the same seconds, not on the same examples."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

import jax
import numpy as np

from ..evolution import Candidate
from ..train._cache import CALL_STAT_KEYS

#: a member trains its first chunk, then chunks until its time is up: the screen's examples per member, in chunks
CHUNKS = 3
#: a member faster than the reference trains at most this many times the screen's examples
MAX_FACTOR = 3
#: what a member's chunks add up to in its ``info`` (the engine's counters and the training measurements)
_SUMMED = (*CALL_STAT_KEYS, "train_seconds", "train_steps", "train_examples")


def _unscored(key: jax.Array, candidate: Candidate) -> Candidate:
    """Leaves the trained candidate unscored (a chunk before the last)."""
    return candidate


def extra_chunks(first_seconds: float, reference_seconds: float, limit: int) -> int:
    """Chunks a member trains after its first: as many as fit in ``reference_seconds`` (the time the screen gives
    every member) at the speed of its first chunk (``first_seconds``), between 0 and ``limit``.

    Example:
        >>> from naivega_jax.autofit._screen import extra_chunks
        >>> extra_chunks(1.0, 3.0, 8), extra_chunks(0.5, 3.0, 8), extra_chunks(2.0, 3.0, 8), extra_chunks(0.1, 3.0, 8)
        (2, 5, 0, 8)
    """
    if not first_seconds > 0:
        return limit
    return int(min(limit, max(0, round(reference_seconds / first_seconds - 1))))


@dataclasses.dataclass
class EqualTimeScreen:
    """The screen of a run under a time budget: each member trains for about the seconds a member of the screen's
    median speed needs for the screen's examples, so a member twice as fast per example trains on twice the
    examples, and the screen ranks what the rest of the run buys with its time, accuracy after equal seconds.

    An equal-examples screen ranks small batches first (more steps per example), which on a CPU cost several times
    the seconds per example, and a time budget pays in seconds: on Fashion-MNIST a standard CNN at batch size 128
    scored 0.77-0.78 validation accuracy after the screen's 6,000 examples, against 0.82 for the best members, and
    0.83 after twice the examples, which it trains in the seconds a slower member takes for 6,000.

    ``fitness`` is the screen's ``TrainThenFitness`` on its examples (``train_data`` the first ``examples`` of
    ``x, y``, one epoch). A member trains them in ``CHUNKS`` chunks of equal size, one ``train_graph`` call each (one
    executable for all), its optimiser state continued from chunk to chunk as the fitness keeps it: the first chunk
    measures its speed (training seconds, compiles excluded); the reference is the median over the members screened
    so far, this one included; then it trains as many further chunks of the next examples of ``x, y`` as fit in the
    reference's time, at most ``MAX_FACTOR`` times the examples in all. ``info`` holds the sums over its chunks.
    The members' examples depend on measured seconds: the screen is not repeatable, as nothing under a time budget
    is. The reference lives in this object: with an executor that copies the fitness to other processes each member
    would be its own reference, so ``fit`` uses it without one only.
    """

    fitness: Any
    x: Any = dataclasses.field(repr=False)
    y: Any = dataclasses.field(repr=False)
    examples: int
    seconds_per_example: list[float] = dataclasses.field(default_factory=list, repr=False)
    _parts: list[Any] = dataclasses.field(default_factory=list, init=False, repr=False)

    def __post_init__(self):
        self.chunk = max(1, self.examples // CHUNKS)
        n = int(np.shape(self.y)[0])
        self.limit = max(0, min(MAX_FACTOR * self.examples, n) // self.chunk - 1)
        # built here, not when first needed: precompile runs in a background thread
        self._precompiler = dataclasses.replace(self.fitness, train_data=self._chunk(0))
        self._parts = [dataclasses.replace(self._precompiler, fitness=_unscored)]

    def _chunk(self, i: int) -> tuple[Any, Any]:
        return self.x[i * self.chunk : (i + 1) * self.chunk], self.y[i * self.chunk : (i + 1) * self.chunk]

    def _part(self, i: int) -> Any:
        """The fitness that trains chunk ``i`` (unscored), built when first needed (each copies its examples once)."""
        while len(self._parts) <= i:
            self._parts.append(dataclasses.replace(self._parts[0], train_data=self._chunk(len(self._parts))))
        return self._parts[i]

    def __call__(self, key: jax.Array, candidate: Candidate) -> Candidate:
        keys = jax.random.split(key, self.limit + 2)
        trained = self._part(0)(keys[0], candidate)
        records = [trained.info]
        if "failure" not in trained.info:
            first = float(trained.info.get("train_seconds", 0.0))
            self.seconds_per_example.append(first / self.chunk)
            reference = statistics.median(self.seconds_per_example) * self.chunk * CHUNKS
            for i in range(1, 1 + extra_chunks(first, reference, self.limit)):
                trained = self._part(i)(keys[i], trained)
                records.append(trained.info)
                if "failure" in trained.info:
                    break
        info = {**trained.info, **{k: sum(r.get(k, 0) for r in records) for k in _SUMMED}}
        trained = trained.replace(info=info)
        if "failure" in info:
            return trained
        scored = self.fitness.fitness(keys[-1], trained)
        if not isinstance(scored, Candidate):
            raise TypeError(
                f"EqualTimeScreen: the fitness {self.fitness.fitness!r} returned {type(scored).__name__}, "
                "expected a Candidate"
            )
        return scored

    def precompile(self, candidate: Candidate) -> None:
        """What the first chunk and the scoring compile (every chunk has the first's shapes)."""
        self._precompiler.precompile(candidate)
