"""Batching, repeatable partitions per generation, seeding, mapping, re-batching and timing of host-side data."""

from __future__ import annotations

import enum
import itertools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from ._base import (
    _END,
    INFINITE,
    DataIterator,
    Pass,
    as_stream,
    check_key,
    check_positive_int,
    pass_number,
    rng,
)


def _as_arrays(data: Any, where: str) -> tuple[tuple[np.ndarray, ...], bool]:
    """(arrays, is_tuple): the data as numpy arrays sharing their first (batch) axis."""
    is_tuple = isinstance(data, tuple)
    parts = data if is_tuple else (data,)
    if not parts:
        raise ValueError(f"{where}: data is an empty tuple; expected an array or a tuple of arrays")
    arrays = tuple(np.asarray(p) for p in parts)
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"{where}: data[{i}] is a scalar; expected arrays with a leading batch axis")
    sizes = [a.shape[0] for a in arrays]
    if len(set(sizes)) != 1:
        shapes = [a.shape for a in arrays]
        raise ValueError(f"{where}: the arrays of data disagree on the batch (first) axis: shapes {shapes}")
    return arrays, is_tuple


class BatchIterator(DataIterator):
    """Batches of ``batch_size`` examples along the first axis of an array or a tuple of arrays.

    ``len(it) == ceil(n / batch_size)``; the last batch is partial. Batches are numpy arrays (a tuple of them when
    ``data`` is a tuple), batch axis first. Without shuffling a batch is a view of ``data``.

    With ``shuffle=key`` each pass (each ``for``) visits the examples in a fresh order, drawn from the key and the
    pass number, so a copy or an unpickled iterator replays the same orders, and ``iter_pass(q)`` recomputes any
    of them. ``cycle=True`` makes the iterator endless, one epoch after another (a new order each epoch), as
    NaiveGAflux's ``Iterators.cycle(BatchIterator(...))`` in its ``ShuffleIterConfig``.

    Args:
        data: an array, or a tuple of arrays (features, labels, ...) with equal first dimension.
        batch_size: a positive int.
        shuffle: ``False`` (the order of ``data``) or a ``jax.random`` key.
        cycle: repeat epochs endlessly.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> it = ng.BatchIterator(np.arange(1, 11), 4)
        >>> len(it), [b.tolist() for b in it]
        (3, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]])
        >>> x, y = np.zeros((10, 3)), np.arange(10)
        >>> [yb.shape for _, yb in ng.BatchIterator((x, y), 4, shuffle=jax.random.key(0))]
        [(4,), (4,), (2,)]
    """

    def __init__(self, data: Any, batch_size: int, *, shuffle: Any = False, cycle: bool = False):
        self.arrays, self.is_tuple = _as_arrays(data, "BatchIterator")
        self.batch_size = check_positive_int(batch_size, "BatchIterator: batch_size")
        if shuffle is True:
            raise TypeError("BatchIterator: shuffle=True needs a key; pass shuffle=jax.random.key(seed)")
        self.key_bits = None if shuffle is False or shuffle is None else check_key(shuffle, "BatchIterator: shuffle")
        if not isinstance(cycle, bool):
            raise TypeError(f"BatchIterator: cycle must be a bool, got {cycle!r}")
        self.cycle = cycle

    @property
    def num_examples(self) -> int:
        """The number of examples (the size of the first axis)."""
        return int(self.arrays[0].shape[0])

    def _num_batches(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def _length(self) -> int | float:
        return INFINITE if self.cycle and self.num_examples else self._num_batches()

    def _order(self, pass_: Pass, epoch: int) -> np.ndarray | None:
        if self.key_bits is None:
            return None
        return rng(self.key_bits, pass_, "BatchIterator", epoch).permutation(self.num_examples)

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        nb, bs = self._num_batches(), self.batch_size
        i = start
        order, order_epoch = None, -1
        while nb and (self.cycle or i < nb):
            epoch, j = divmod(i, nb)
            if epoch != order_epoch:
                order, order_epoch = self._order(pass_, epoch), epoch
            if order is None:
                parts = tuple(a[j * bs : (j + 1) * bs] for a in self.arrays)
            else:
                idx = order[j * bs : (j + 1) * bs]
                parts = tuple(a[idx] for a in self.arrays)
            yield parts if self.is_tuple else parts[0]
            i += 1

    def __repr__(self) -> str:
        shapes = tuple(a.shape for a in self.arrays)
        shapes_txt = shapes if self.is_tuple else shapes[0]
        return (
            f"BatchIterator(shape={shapes_txt}, batch_size={self.batch_size}, shuffle={self.key_bits is not None}, "
            f"cycle={self.cycle})"
        )


class _Chunk(DataIterator):
    """Items ``offset .. offset+n-1`` of one pass of ``base``: every iteration of a chunk gives the same items."""

    def __init__(self, base: DataIterator, pass_: Pass, offset: int, n: int):
        self.base, self.pass_, self.offset, self.n = base, pass_, offset, n

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        if start >= self.n:
            return iter(())
        return itertools.islice(self.base._items(self.pass_, self.offset + start), self.n - start)

    def _length(self) -> int | None:
        total = self.base._length()
        if total is None:
            return None
        if total == INFINITE:
            return self.n
        return max(0, min(self.n, int(total) - self.offset))

    def __repr__(self) -> str:
        return f"Chunk(items {self.offset}..{self.offset + self.n - 1} of pass {self.pass_} of {self.base!r})"


def _has_item(base: DataIterator, pass_: Pass, position: int) -> bool:
    return next(base._items(pass_, position), _END) is not _END


class RepeatPartitionIterator(DataIterator):
    """Consecutive chunks of ``n`` items of ``base``; each chunk re-iterates identically.

    Iterating yields ``len(base) / n`` chunks (rounded up); a chunk is itself an iterable of items that gives the same
    items (the same shuffle and augmentation) every time it is iterated, so every candidate of a generation can
    train on exactly the same data. Each ``for`` over the partition iterator starts a new pass of ``base`` (a new
    shuffle for a shuffled ``BatchIterator``). ``chunk(i, pass_index)`` gives any chunk directly.

    Args:
        base: a re-iterable: one of these iterators, a list, a range or an array (one-shot iterators cannot repeat).
        n: items per chunk, a positive int.

    Example:
        >>> import naivega_jax as ng
        >>> chunks = list(ng.RepeatPartitionIterator(range(1, 21), 5))
        >>> [list(c) for c in chunks]
        [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15], [16, 17, 18, 19, 20]]
        >>> list(chunks[1]) == list(chunks[1])
        True
    """

    def __init__(self, base: Any, n: int):
        self.base = as_stream(base, "RepeatPartitionIterator: base", reiterable=True)
        self.n = check_positive_int(n, "RepeatPartitionIterator: n")

    def _length(self) -> int | float | None:
        total = self.base._length()
        if total is None or total == INFINITE:
            return total
        return math.ceil(int(total) / self.n)

    def _chunk(self, pass_: Pass, index: int) -> _Chunk:
        return _Chunk(self.base, pass_, index * self.n, self.n)

    def chunk(self, index: int, pass_index: int = 0) -> Any:
        """Chunk ``index`` (0-based) of pass ``pass_index`` of the base: a re-iterable of up to ``n`` items."""
        for name, v in (("index", index), ("pass_index", pass_index)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"RepeatPartitionIterator.chunk: {name} must be an int >= 0, got {v!r}")
        return self._chunk(pass_number(int(pass_index)), int(index))

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        total = self._length()
        k = start
        while True:
            if total is None:
                if not _has_item(self.base, pass_, k * self.n):
                    return
            elif k >= total:
                return
            yield self._chunk(pass_, k)
            k += 1

    def __repr__(self) -> str:
        return f"RepeatPartitionIterator({self.base!r}, {self.n})"


class StatefulGenerationIter:
    """The data of a generation: ``it(generation)`` is chunk ``generation - first_generation`` of a partition.

    NaiveGAflux's StatefulGenerationIter keeps the current chunk while the generation is unchanged and advances to
    the next one when it changes, starting again from the first chunk (a new pass: a new shuffle) when the chunks
    run out. Here that is a pure function of the generation number: generation ``g`` gets chunk
    ``(g - first_generation) % len(rpi)`` of pass ``(g - first_generation) // len(rpi)``, which is the same for
    consecutive generations and stays right when generations are skipped, when a run resumes, or when another
    process evaluates some of the candidates.

    Args:
        rpi: a ``RepeatPartitionIterator``.
        first_generation: the generation that gets the first chunk (populations start at 1).

    Example:
        >>> import naivega_jax as ng
        >>> it = ng.StatefulGenerationIter(ng.RepeatPartitionIterator(range(1, 21), 5))
        >>> list(it(1)), list(it(2)), list(it(5))
        ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    """

    def __init__(self, rpi: RepeatPartitionIterator, *, first_generation: int = 1):
        if not isinstance(rpi, RepeatPartitionIterator):
            raise TypeError(
                f"StatefulGenerationIter: rpi must be an ng.RepeatPartitionIterator, got {type(rpi).__name__}"
            )
        if isinstance(first_generation, bool) or not isinstance(first_generation, (int, np.integer)):
            raise TypeError(f"StatefulGenerationIter: first_generation must be an int, got {first_generation!r}")
        self.rpi = rpi
        self.first_generation = int(first_generation)
        self._counted: int | None = None

    def _num_chunks(self) -> int | float:
        total = self.rpi._length()
        if total is not None:
            return total
        if self._counted is None:
            items = sum(1 for _ in self.rpi.base._items(pass_number(0), 0))
            self._counted = math.ceil(items / self.rpi.n)
        return self._counted

    def __call__(self, generation: int) -> Any:
        """The chunk (a re-iterable of batches) for ``generation``."""
        if isinstance(generation, bool) or not isinstance(generation, (int, np.integer)):
            raise TypeError(f"StatefulGenerationIter: generation must be an int, got {generation!r}")
        index = int(generation) - self.first_generation
        if index < 0:
            raise ValueError(
                f"StatefulGenerationIter: generation {generation} is before first_generation {self.first_generation}"
            )
        known = self.rpi._length()
        if known is None and _has_item(self.rpi.base, pass_number(0), index * self.rpi.n):
            return self.rpi._chunk(pass_number(0), index)
        total = self._num_chunks()
        if total == INFINITE:
            return self.rpi._chunk(pass_number(0), index)
        if total == 0:
            raise ValueError("StatefulGenerationIter: the partitioned data is empty")
        q, k = divmod(index, int(total))
        return self.rpi._chunk(pass_number(q), k)

    def __repr__(self) -> str:
        return f"StatefulGenerationIter({self.rpi!r}, first_generation={self.first_generation})"


class SeedIterator(DataIterator):
    """Makes every pass over ``base`` identical: all randomness below it is re-keyed per step from ``key``.

    NaiveGAflux re-seeds a shared generator with ``seed + i`` before step i. Here the random iterators wrapped by a
    SeedIterator (shuffles, flips, shifts) draw from (their own key, this key, the step), so iterating twice gives
    the same items, and a different key gives different ones. Put it outermost: iterators wrapped around a
    SeedIterator still draw fresh numbers on each pass.

    Args:
        base: an iterable; its random iterators are re-keyed.
        key: a ``jax.random`` key.

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> shuffled = ng.BatchIterator(np.arange(8), 4, shuffle=jax.random.key(1))
        >>> it = ng.SeedIterator(shuffled, jax.random.key(2))
        >>> [b.tolist() for b in it] == [b.tolist() for b in it]
        True
    """

    def __init__(self, base: Any, key: jax.Array):
        self.base = as_stream(base, "SeedIterator: base")
        self.key_bits = check_key(key, "SeedIterator: key")

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        return self.base._items((1, *self.key_bits), start)

    def _length(self) -> int | float | None:
        return self.base._length()

    def __repr__(self) -> str:
        return f"SeedIterator({self.base!r})"


class MapIterator(DataIterator):
    """``fn`` applied to each item of ``base`` (lazily, on every pass).

    ``fn`` must be deterministic, and a module-level function for the iterator to pickle.

    Example:
        >>> import naivega_jax as ng
        >>> list(ng.MapIterator(lambda x: 2 * x, [1, 2, 3]))
        [2, 4, 6]
    """

    def __init__(self, fn: Callable[[Any], Any], base: Any):
        if not callable(fn):
            raise TypeError(f"MapIterator: fn must be callable, got {type(fn).__name__}: {fn!r}")
        self.fn = fn
        self.base = as_stream(base, "MapIterator: base")

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        return map(self.fn, self.base._items(pass_, start))

    def _length(self) -> int | float | None:
        return self.base._length()

    def __repr__(self) -> str:
        return f"MapIterator({self.fn!r}, {self.base!r})"


def _batch_parts(item: Any) -> tuple[tuple[np.ndarray, ...], bool]:
    if isinstance(item, (np.ndarray, jax.Array, tuple)):
        parts, is_tuple = _as_arrays(item, "ReBatchingIterator: a batch of base")
        return parts, is_tuple
    raise TypeError(
        "ReBatchingIterator: base must yield arrays or tuples of arrays with a leading batch axis, "
        f"got {type(item).__name__}: {item!r}"
    )


class ReBatchingIterator(DataIterator):
    """The items of ``base`` re-cut into batches of ``batch_size`` examples, in the same order.

    Consecutive batches of ``base`` are joined or split so that every batch is full except possibly the last; the
    examples come in exactly the order ``base`` gives them (including its shuffles and augmentation). So models with
    different batch sizes see the same data in the same order. (NaiveGAflux emits a partial batch whenever a joined
    group does not divide evenly; carrying the remainder forward instead keeps batch shapes fixed.)

    Example:
        >>> import numpy as np, naivega_jax as ng
        >>> it = ng.ReBatchingIterator(ng.BatchIterator(np.arange(1, 21), 4), 8)
        >>> [b.tolist() for b in it]
        [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16], [17, 18, 19, 20]]
    """

    def __init__(self, base: Any, batch_size: int):
        self.base = as_stream(base, "ReBatchingIterator: base")
        self.batch_size = check_positive_int(batch_size, "ReBatchingIterator: batch_size")

    def _all(self, pass_: Pass) -> Iterator[Any]:
        bs = self.batch_size
        pending: list[tuple[np.ndarray, ...]] = []
        count, is_tuple, width = 0, None, 0
        for item in self.base._items(pass_, 0):
            parts, item_tuple = _batch_parts(item)
            if is_tuple is None:
                is_tuple, width = item_tuple, len(parts)
            elif item_tuple != is_tuple or len(parts) != width:
                raise ValueError("ReBatchingIterator: base mixes batch structures (arrays and tuples of arrays)")
            pending.append(parts)
            count += parts[0].shape[0]
            if count < bs:
                continue
            joined = tuple(np.concatenate([p[i] for p in pending]) for i in range(width))
            n_full = count // bs
            for j in range(n_full):
                out = tuple(a[j * bs : (j + 1) * bs] for a in joined)
                yield out if is_tuple else out[0]
            rest = tuple(a[n_full * bs :] for a in joined)
            count = count - n_full * bs
            pending = [rest] if count else []
        if count:
            joined = tuple(np.concatenate([p[i] for p in pending]) for i in range(width))
            yield joined if is_tuple else joined[0]

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        it = self._all(pass_)
        return itertools.islice(it, start, None) if start else it

    def __repr__(self) -> str:
        return f"ReBatchingIterator({self.base!r}, {self.batch_size})"


class _TimeoutAction(enum.Enum):
    STOP = "stop"


class TimedIterator(DataIterator):
    """Calls ``timeout_action()`` when the steps between items take longer than ``time_limit`` ``patience`` times.

    A step is the time the consumer spends between receiving an item and asking for the next (e.g. one training
    step); the first step is never counted (it compiles). Without ``accumulate_timeouts`` a fast step resets the
    count. Once the count reaches ``patience``, ``timeout_action()`` is called before each further item; iteration
    stops when it returns ``TimedIterator.STOP`` (``timeout_action=None`` stops at once), and otherwise goes on.

    Args:
        base: an iterable.
        time_limit: seconds, > 0.
        patience: how many slow steps are tolerated, a positive int.
        timeout_action: a function of no arguments, or None to stop.
        accumulate_timeouts: keep counting slow steps across fast ones.

    Example:
        >>> import naivega_jax as ng
        >>> it = ng.TimedIterator(range(5), time_limit=10.0, patience=1, timeout_action=None)
        >>> list(it)
        [0, 1, 2, 3, 4]
    """

    STOP = _TimeoutAction.STOP

    def __init__(
        self,
        base: Any,
        time_limit: float,
        patience: int = 5,
        *,
        timeout_action: Callable[[], Any] | None = None,
        accumulate_timeouts: bool = False,
    ):
        self.base = as_stream(base, "TimedIterator: base")
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
            raise ValueError(f"TimedIterator: time_limit must be a number of seconds > 0, got {time_limit!r}")
        self.time_limit = float(time_limit)
        self.patience = check_positive_int(patience, "TimedIterator: patience")
        if timeout_action is not None and not callable(timeout_action):
            raise TypeError(f"TimedIterator: timeout_action must be callable or None, got {timeout_action!r}")
        self.timeout_action = timeout_action
        self.accumulate_timeouts = bool(accumulate_timeouts)

    def _stop(self) -> bool:
        if self.timeout_action is None:
            return True
        return self.timeout_action() is TimedIterator.STOP

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        base = self.base._items(pass_, start)
        stamp = None  # when the consumer got the last item; None after the first (its step is never counted)
        slow_steps = 0
        first = True
        while True:
            if stamp is not None and time.perf_counter() - stamp > self.time_limit:
                slow_steps += 1
            elif not self.accumulate_timeouts:
                slow_steps = 0
            if slow_steps >= self.patience and self._stop():
                return
            item = next(base, _END)
            if item is _END:
                return
            stamp = None if first else time.perf_counter()
            first = False
            yield item

    def _length(self) -> int | float | None:
        return self.base._length()

    def __repr__(self) -> str:
        return f"TimedIterator({self.base!r}, time_limit={self.time_limit}, patience={self.patience})"
