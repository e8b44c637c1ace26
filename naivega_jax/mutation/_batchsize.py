"""Batch-size mutation and crossover (NaiveGAflux ``TrainBatchSizeMutation``, ``IteratorMapCrossover``)."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from . import _draw
from ._base import Mutation, report


def _check_batch_size(bs: Any, where: str) -> int:
    if isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1:
        raise TypeError(f"{where}: batch_size must be a positive int, got {bs!r}")
    return int(bs)


def _ordered_limits(l1: Any, l2: Any, where: str) -> tuple[float, float]:
    for name, v in (("l1", l1), ("l2", l2)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(float(v)):
            raise ValueError(f"{where}: {name} must be a finite number (a relative change), got {v!r}")
    return (float(l1), float(l2)) if l1 < l2 else (float(l2), float(l1))


def mutate_batch_size(quantize_to: tuple[int, ...] | None, batch_size: int, x: float) -> int:
    """The new batch size for relative step ``x`` (upstream ``mutate_batchsize``, with ``x`` already drawn).

    Without ``quantize_to``: ``max(1, round(batch_size * (1 + x)))``. With it: starting from the index of the value
    nearest to ``batch_size``, step ``round(n * (1 + x)) - n`` indices (n = number of values), clamped.
    """
    if quantize_to is None:
        return max(1, round(batch_size * (1.0 + x)))
    n = len(quantize_to)
    start = int(np.argmin([abs(batch_size - q) for q in quantize_to]))
    step = round(n * (1.0 + x)) - n
    return max(1, quantize_to[min(max(start + step, 0), n - 1)])


@dataclasses.dataclass(frozen=True, init=False)
class TrainBatchSizeMutation(Mutation):
    """Changes a training batch size by a relative amount drawn from U(min(l1, l2), max(l1, l2)).

    ``m(key, batch_size) -> int``. Without ``quantize_to`` the new size is ``max(1, round(bs * (1 + x)))``. With a
    sequence of allowed sizes it moves ``round(n * (1 + x)) - n`` positions from the allowed size nearest to ``bs``
    (n = number of allowed sizes), so nearby sizes are more likely.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.TrainBatchSizeMutation(-0.1, -0.1)(jax.random.key(0), 16)
        14
        >>> ng.TrainBatchSizeMutation(0.1, 0.1, quantize_to=[2**i for i in range(1, 11)])(jax.random.key(0), 16)
        32
    """

    minrel: float
    maxrel: float
    quantize_to: tuple[int, ...] | None
    target = "batch_size"

    def __init__(self, l1: float, l2: float, quantize_to: Sequence[int] | None = None):
        lo, hi = _ordered_limits(l1, l2, "TrainBatchSizeMutation")
        if quantize_to is not None:
            try:
                q = tuple(quantize_to)
            except TypeError:
                raise TypeError(
                    "TrainBatchSizeMutation: quantize_to must be None or a sequence of positive ints, "
                    f"got {quantize_to!r}"
                ) from None
            if not q:
                raise ValueError("TrainBatchSizeMutation: quantize_to must not be empty (use None for any size)")
            quantize_to = tuple(_check_batch_size(v, "TrainBatchSizeMutation(quantize_to=...)") for v in q)
        object.__setattr__(self, "minrel", lo)
        object.__setattr__(self, "maxrel", hi)
        object.__setattr__(self, "quantize_to", quantize_to)

    def __call__(self, key: jax.Array, batch_size: int) -> int:
        bs = _check_batch_size(batch_size, "TrainBatchSizeMutation")
        x = float(_draw.uniform(key)) * (self.maxrel - self.minrel) + self.minrel
        new = mutate_batch_size(self.quantize_to, bs, x)
        report("TrainBatchSizeMutation", old=bs, new=new)
        return new


@dataclasses.dataclass(frozen=True)
class BatchSizeCrossover(Mutation):
    """Swaps the batch sizes of two candidates: ``c(key, (a, b)) -> (b, a)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> ng.mutation.BatchSizeCrossover()(jax.random.key(0), (16, 64))
        (64, 16)
    """

    target = "batch_size"
    is_crossover = True

    def __call__(self, key: jax.Array, pair: tuple[int, int]) -> tuple[int, int]:
        a, b = pair
        a, b = _check_batch_size(a, "BatchSizeCrossover"), _check_batch_size(b, "BatchSizeCrossover")
        report("BatchSizeCrossover", old=[a, b], new=[b, a])
        return b, a
