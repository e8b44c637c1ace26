"""Random augmentation of image and sequence batches (channels last), keyed per pass and position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

from ._base import DataIterator, Pass, as_stream, check_key, features_map, rng


class FlipIterator(DataIterator):
    """Reverses each example along ``axis`` with probability ``p``, drawn per example (not per batch).

    Batches are arrays (batch, ...) or tuples whose first element is such an array (only it is flipped). ``axis``
    counts in the batch array: the default ``-2`` is the width of (batch, H, W, C) images (a horizontal flip) and
    the length of (batch, L, C) sequences. The draws come from (key, pass, position): a fresh set on each pass,
    the same set whenever a pass or a chunk is repeated, and fixed for good under a ``SeedIterator``.

    Args:
        base: an iterable of batches.
        p: the probability that an example is flipped, in [0, 1].
        key: a ``jax.random`` key (keyword only).
        axis: the axis to reverse; not the batch axis 0.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> x = np.arange(6).reshape(1, 1, 3, 2)             # one 1x3 image with 2 channels
        >>> flipped = next(iter(ng.FlipIterator([x], p=1.0, key=jax.random.key(0))))
        >>> flipped[0, 0, :, 0].tolist()
        [4, 2, 0]
    """

    def __init__(self, base: Any, p: float = 0.5, *, key: jax.Array, axis: int = -2):
        self.base = as_stream(base, "FlipIterator: base")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"FlipIterator: p must be a probability in [0, 1], got {p!r}")
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"FlipIterator: axis must be an int, got {axis!r}")
        self.p = float(p)
        self.axis = axis
        self.key_bits = check_key(key, "FlipIterator: key")

    def _flip(self, x: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        if x.ndim < 2 or not -x.ndim <= self.axis < x.ndim or self.axis % x.ndim == 0:
            raise ValueError(
                f"FlipIterator: axis={self.axis} is not a non-batch axis of a batch of shape {x.shape} "
                "(axis 0 is the batch)"
            )
        mask = gen.random(x.shape[0]) < self.p
        out = x.copy()
        out[mask] = np.flip(x[mask], axis=self.axis)
        return out

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        for pos, item in enumerate(self.base._items(pass_, start), start):
            gen = rng(self.key_bits, pass_, "FlipIterator", pos)
            yield features_map(item, lambda x, gen=gen: self._flip(x, gen), "FlipIterator")

    def _length(self) -> int | float | None:
        return self.base._length()

    def __repr__(self) -> str:
        return f"FlipIterator({self.base!r}, p={self.p}, axis={self.axis})"


def _shift_axis(x: np.ndarray, axis: int, shifts: np.ndarray) -> np.ndarray:
    """Each example rolled forward by its own shift along ``axis``, the wrapped-around entries set to zero."""
    size = x.shape[axis]
    out = np.zeros_like(x)
    for s in np.unique(shifts):  # one slice copy per distinct shift: a handful, whatever the batch size
        if s >= size:
            continue
        rows = np.nonzero(shifts == s)[0]
        src: list[Any] = [slice(None)] * x.ndim
        dst: list[Any] = [slice(None)] * x.ndim
        src[0] = dst[0] = rows
        src[axis], dst[axis] = slice(0, size - s), slice(s, size)
        out[tuple(dst)] = x[tuple(src)]
    return out


class ShiftIterator(DataIterator):
    """Shifts each example along every spatial axis by a random U{0..max} steps; wrapped entries become zero.

    Batches are arrays ``(batch, *spatial, channels)`` — images (batch, H, W, C), sequences (batch, L, C) — or tuples
    whose first element is one. As NaiveGAflux's ShiftIterator: a circular shift by a draw from 0..max_shift per
    spatial axis, with the rows that wrapped around zeroed (so content moves forward and zeros enter at the
    start). Shifts are drawn per example, from (key, pass, position).

    Args:
        base: an iterable of batches.
        max_shifts: the largest shift, an int for every spatial axis or one int per spatial axis.
        key: a ``jax.random`` key (keyword only).

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> x = np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1)   # one sequence of length 5
        >>> batches = ng.ShiftIterator([x] * 4, 2, key=jax.random.key(0))
        >>> sorted({tuple(b[0, :, 0].tolist()) for b in batches}) # doctest: +NORMALIZE_WHITESPACE
        [(0.0, 0.0, 1.0, 2.0, 3.0), (0.0, 1.0, 2.0, 3.0, 4.0), (1.0, 2.0, 3.0, 4.0, 5.0)]
    """

    def __init__(self, base: Any, max_shifts: int | Sequence[int], *, key: jax.Array):
        self.base = as_stream(base, "ShiftIterator: base")
        values = (max_shifts,) if isinstance(max_shifts, (int, np.integer)) else tuple(max_shifts)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"ShiftIterator: max_shifts must be ints >= 0, got {max_shifts!r}")
        self.max_shifts = max_shifts if isinstance(max_shifts, (int, np.integer)) else tuple(int(v) for v in values)
        self.key_bits = check_key(key, "ShiftIterator: key")

    def _shift(self, x: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        spatial = list(range(1, x.ndim - 1))
        if not spatial:
            raise ValueError(
                f"ShiftIterator: a batch of shape {x.shape} has no spatial axis; expected (batch, *spatial, channels)"
            )
        maxes = [self.max_shifts] * len(spatial) if isinstance(self.max_shifts, (int, np.integer)) else self.max_shifts
        if len(maxes) != len(spatial):
            raise ValueError(
                f"ShiftIterator: max_shifts={self.max_shifts!r} gives {len(maxes)} values but batches of shape "
                f"{x.shape} have {len(spatial)} spatial axes"
            )
        out = x
        for axis, m in zip(spatial, maxes):
            shifts = np.asarray(gen.integers(0, int(m) + 1, size=x.shape[0]))
            out = _shift_axis(out, axis, shifts)
        return out

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        for pos, item in enumerate(self.base._items(pass_, start), start):
            gen = rng(self.key_bits, pass_, "ShiftIterator", pos)
            yield features_map(item, lambda x, gen=gen: self._shift(x, gen), "ShiftIterator")

    def _length(self) -> int | float | None:
        return self.base._length()

    def __repr__(self) -> str:
        return f"ShiftIterator({self.base!r}, max_shifts={self.max_shifts!r})"
