"""The iteration protocol shared by every data iterator: passes, positions and host randomness.

Every iterator here is a pure function of its configuration, a *pass* and a *position*: ``_items(pass_, start)``
yields the items of one pass from item ``start`` on. Randomness (shuffles, augmentation) is drawn from numpy
generators seeded by (key bits, pass, position), so any item can be recomputed without replaying the ones before
it. That is what lets a chunk of a ``RepeatPartitionIterator`` re-iterate identically, lets a run resume mid-stream,
and lets an iterator be pickled to another process: the only mutable state is the count of passes started with
``for`` on that object (``state_dict``).

A pass is a tuple of non-negative ints: ``(0, q)`` for the q-th pass started on an object, ``(1, *key_bits)`` for
the fixed pass a ``SeedIterator`` imposes on what it wraps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from .._random import key_bits, salt

Pass = tuple[int, ...]
INFINITE = math.inf
_END = object()


def pass_number(q: int) -> Pass:
    """The pass token of the q-th ordinary pass."""
    return (0, q)


def check_key(key: Any, where: str) -> tuple[int, ...]:
    """The bits of a jax key given as ``where``, as Python ints (picklable, unlike a typed key array)."""
    if isinstance(key, bool) or key is None:
        raise TypeError(f"{where} must be a jax.random key (jax.random.key(seed)), got {key!r}")
    try:
        return key_bits(key)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None


def rng(bits: tuple[int, ...], pass_: Pass, name: str, *counters: int) -> np.random.Generator:
    """A numpy generator determined by a key, a pass, the iterator's kind and counters (epoch, position)."""
    return np.random.default_rng([*bits, *pass_, salt(name), *counters])


def check_positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where} must be a positive int, got {value!r}")
    return int(value)


class DataIterator:
    """Base class of the data iterators: re-iterable, picklable, with a restorable pass counter.

    Subclasses implement ``_items(pass_, start)`` (pure) and ``_length()`` (an int, ``None`` when unknown, or
    ``INFINITE``). ``for x in it`` starts the next pass; ``iter_pass(q, start)`` recomputes any pass from any
    position without touching the counter.
    """

    _next_pass: int = 0

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        raise NotImplementedError

    def _length(self) -> int | float | None:
        return None

    def __iter__(self) -> Iterator[Any]:
        q = self._next_pass
        self._next_pass = q + 1
        return self._items(pass_number(q), 0)

    def iter_pass(self, pass_index: int, start: int = 0) -> Iterator[Any]:
        """The items of pass number ``pass_index`` (0 is the first ``for``), from item ``start`` on.

        Pure: the same arguments always give the same items, whatever was iterated before. With ``state_dict``
        this is how a run resumes in the middle of a pass.
        """
        if isinstance(pass_index, bool) or not isinstance(pass_index, (int, np.integer)) or pass_index < 0:
            raise ValueError(f"iter_pass: pass_index must be an int >= 0, got {pass_index!r}")
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"iter_pass: start must be an int >= 0, got {start!r}")
        return self._items(pass_number(int(pass_index)), int(start))

    def __len__(self) -> int:
        n = self._length()
        if n is None:
            raise TypeError(f"{type(self).__name__}: the number of items is not known in advance")
        if n == INFINITE:
            raise TypeError(f"{type(self).__name__}: the iterator is infinite (cycle=True somewhere below)")
        return int(n)

    def state_dict(self) -> dict[str, int]:
        """The iterator's state: how many passes ``for`` has started on this object (JSON-friendly)."""
        return {"next_pass": self._next_pass}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from ``state_dict``: the next ``for`` continues with the same pass as the saved one."""
        if not isinstance(state, Mapping) or "next_pass" not in state:
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected {{'next_pass': int}}, got {state!r}")
        q = state["next_pass"]
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 0:
            raise ValueError(f"{type(self).__name__}.load_state_dict: next_pass must be an int >= 0, got {q!r}")
        self._next_pass = int(q)


class PlainIterable(DataIterator):
    """Any re-iterable Python object (list, range, array, zip of arrays is not: it is one-shot) as a stream."""

    def __init__(self, base: Iterable[Any]):
        self.base = base

    def _items(self, pass_: Pass, start: int) -> Iterator[Any]:
        it = iter(self.base)
        return itertools.islice(it, start, None) if start else it

    def _length(self) -> int | None:
        try:
            return len(self.base)  # type: ignore[arg-type]
        except TypeError:
            return None

    def __repr__(self) -> str:
        return f"PlainIterable({self.base!r})"


def as_stream(base: Any, where: str, *, reiterable: bool = False) -> DataIterator:
    """``base`` as a DataIterator; ``reiterable`` rejects one-shot iterators (generators, zip, map)."""
    if isinstance(base, DataIterator):
        return base
    if isinstance(base, jax.Array):
        base = np.asarray(base)
    try:
        it = iter(base)
    except TypeError:
        raise TypeError(f"{where} must be iterable, got {type(base).__name__}: {base!r}") from None
    if reiterable and it is base:
        raise TypeError(
            f"{where} must be re-iterable (a list, range, array or one of ng's iterators), got the one-shot "
            f"iterator {type(base).__name__}; wrap the data in ng.BatchIterator or a list"
        )
    return PlainIterable(base)


def features_map(item: Any, fn: Any, where: str) -> Any:
    """Apply ``fn`` to the features of a batch: the batch itself, or the first element of a tuple batch."""
    if isinstance(item, tuple):
        if not item:
            raise ValueError(f"{where}: got an empty tuple as a batch")
        return (fn(np.asarray(item[0])), *item[1:])
    if isinstance(item, (np.ndarray, jax.Array)):
        return fn(np.asarray(item))
    raise TypeError(f"{where}: a batch must be an array or a tuple (features, labels, ...), got {type(item).__name__}")
