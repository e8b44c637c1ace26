"""A small symbolic algebra of feature-map shape changes (NaiveGAflux ``src/shape.jl``).

A ``DeltaShape`` says how an op changes the spatial axes of its input (not channels, not batch):
``ShapeAdd`` adds, ``ShapeMul`` multiplies, ``ShapeDiv`` divides rounding up, ``ShapeFlatten`` removes them.
A conv or pool maps ``x -> ceil((x + pad_actual - pad_same) / stride)``, that is ``ShapeAdd`` then ``ShapeDiv``.
Squashing reorders and combines a sequence into as few changes as the algebra allows, so two paths can be
compared independently of the input size. Like upstream this is a heuristic: equal squashed forms mean equal
mappings, unequal ones may still be equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .._errors import ShapeError

Spatial = tuple[int, ...]


class DeltaShape:
    """Base class of feature-map shape changes (NaiveGAflux ``ΔShape``).

    Example:
        >>> import naivega_jax as ng
        >>> isinstance(ng.search.ShapeAdd(1, 2), ng.search.DeltaShape)
        True
    """

    @property
    def ndims_in(self) -> int | None:
        raise NotImplementedError

    @property
    def ndims_out(self) -> int | None:
        raise NotImplementedError

    def type_key(self) -> tuple[Any, ...]:
        """What orders and groups changes: the class and the number of spatial axes."""
        return (type(self).__name__, self.ndims_in)

    def apply(self, shape: Spatial) -> Spatial:
        raise NotImplementedError


def _ints(values: tuple[Any, ...], what: str) -> tuple[int, ...]:
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = tuple(values[0])
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{what}: expected one int per spatial axis, got {values!r}")
    return tuple(values)


@dataclasses.dataclass(frozen=True, init=False)
class _Elementwise(DeltaShape):
    delta: tuple[int, ...]

    def __init__(self, *delta: int | Sequence[int]):
        object.__setattr__(self, "delta", _ints(delta, type(self).__name__))

    @property
    def ndims_in(self) -> int:
        return len(self.delta)

    @property
    def ndims_out(self) -> int:
        return len(self.delta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.delta}"

    def _check(self, shape: Spatial) -> Spatial:
        if len(shape) != len(self.delta):
            raise ShapeError(f"{self!r} needs {len(self.delta)} spatial axes, got shape {shape}")
        return shape


class ShapeAdd(_Elementwise):
    """Adds ``delta`` to each spatial size.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.ShapeAdd(1, 2).apply((3, 4))
        (4, 6)
    """

    def apply(self, shape):
        return tuple(s + d for s, d in zip(self._check(shape), self.delta))


class ShapeMul(_Elementwise):
    """Multiplies each spatial size by ``delta``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.ShapeMul(1, 2).apply((3, 4))
        (3, 8)
    """

    def apply(self, shape):
        return tuple(s * d for s, d in zip(self._check(shape), self.delta))


class ShapeDiv(_Elementwise):
    """Divides each spatial size by ``delta``, rounding up (a stride).

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.ShapeDiv(1, 2).apply((3, 5))
        (3, 3)
    """

    def apply(self, shape):
        return tuple(-(-s // d) for s, d in zip(self._check(shape), self.delta))


@dataclasses.dataclass(frozen=True)
class ShapeFlatten(DeltaShape):
    """Removes the spatial axes (global pool, flatten); ``ndims`` is how many it removes (None: any number).

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.ShapeFlatten(2).apply((11, 12))
        ()
    """

    ndims: int | None = None

    @property
    def ndims_in(self):
        return self.ndims

    @property
    def ndims_out(self):
        return 0

    def apply(self, shape):
        return ()


@dataclasses.dataclass(frozen=True)
class RevertShape(DeltaShape):
    """The undefined inverse of a change that cannot be inverted (a flatten); it has no ``apply``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.RevertShape(ng.search.ShapeFlatten(2)).ndims_out
        2
    """

    inner: DeltaShape

    @property
    def ndims_in(self):
        return self.inner.ndims_out

    @property
    def ndims_out(self):
        return self.inner.ndims_in

    def type_key(self):
        return ("RevertShape", self.inner.type_key())

    def apply(self, shape):
        raise ShapeError(f"{self!r} has no defined shape mapping")


def revert(s: DeltaShape | Sequence[DeltaShape]) -> Any:
    """The change(s) undoing ``s``: ``fshape((*s, *revert(s)), x) == x`` (not exact for ``ShapeDiv``)."""
    if isinstance(s, DeltaShape):
        if isinstance(s, RevertShape):
            return s.inner
        if isinstance(s, ShapeAdd):
            return ShapeAdd(tuple(-d for d in s.delta))
        if isinstance(s, ShapeMul):
            return ShapeDiv(s.delta)
        if isinstance(s, ShapeDiv):
            return ShapeMul(s.delta)
        return RevertShape(s)
    return tuple(revert(x) for x in reversed(tuple(s)))


def _same_kind(s1: DeltaShape, s2: DeltaShape, cls: type) -> bool:
    return isinstance(s1, cls) and isinstance(s2, cls) and s1.ndims_in == s2.ndims_in


def _isdiv(s1: _Elementwise, s2: _Elementwise) -> bool:
    return all(a % b == 0 for a, b in zip(s1.delta, s2.delta))


def combine(s1: DeltaShape, s2: DeltaShape | Sequence[DeltaShape]) -> tuple[DeltaShape, ...]:
    """``s1`` then ``s2`` as one change where the algebra allows it (else both); ``s2`` may be a sequence whose first
    element is combined."""
    if not isinstance(s2, DeltaShape):
        s2 = tuple(s2)
        return (*combine(s1, s2[0]), *s2[1:])
    if isinstance(s1, ShapeAdd) and isinstance(s2, ShapeAdd) and _same_kind(s1, s2, ShapeAdd):
        return (ShapeAdd(tuple(a + b for a, b in zip(s1.delta, s2.delta))),)
    for cls in (ShapeMul, ShapeDiv):
        if isinstance(s1, cls) and isinstance(s2, cls) and _same_kind(s1, s2, cls):
            return (cls(tuple(a * b for a, b in zip(s1.delta, s2.delta))),)
    if isinstance(s1, ShapeMul) and isinstance(s2, ShapeDiv) and s1.ndims_in == s2.ndims_in and _isdiv(s1, s2):
        return (ShapeMul(tuple(a // b for a, b in zip(s1.delta, s2.delta))),)
    return (s1, s2)


def swap_shapes(s1: DeltaShape, s2: DeltaShape) -> tuple[DeltaShape, DeltaShape]:
    """``(s1, s2)`` with the two in the other order and the same mapping, where the algebra allows it."""
    if type(s1) is type(s2) and s1.type_key() == s2.type_key():
        return s2, s1
    if s1.ndims_in != s2.ndims_in or not (isinstance(s1, _Elementwise) and isinstance(s2, _Elementwise)):
        return s1, s2
    if isinstance(s1, ShapeAdd) and isinstance(s2, ShapeMul):
        return s2, ShapeAdd(tuple(m * a for m, a in zip(s2.delta, s1.delta)))
    if isinstance(s1, ShapeMul) and isinstance(s2, ShapeAdd) and _isdiv(s2, s1):
        return ShapeAdd(tuple(a // m for a, m in zip(s2.delta, s1.delta))), s1
    if isinstance(s1, ShapeAdd) and isinstance(s2, ShapeDiv) and _isdiv(s1, s2):
        return s2, ShapeAdd(tuple(a // d for a, d in zip(s1.delta, s2.delta)))
    if isinstance(s1, ShapeDiv) and isinstance(s2, ShapeAdd):
        return ShapeAdd(tuple(d * a for d, a in zip(s1.delta, s2.delta))), s1
    return s1, s2


def is_noop(s: DeltaShape) -> bool:
    if isinstance(s, ShapeAdd):
        return all(d == 0 for d in s.delta)
    if isinstance(s, (ShapeMul, ShapeDiv)):
        return all(d == 1 for d in s.delta)
    return False


def filter_noops(s: DeltaShape | Sequence[DeltaShape]) -> tuple[DeltaShape, ...]:
    """``s`` without identity changes such as ``ShapeAdd(0, 0)``."""
    seq = (s,) if isinstance(s, DeltaShape) else tuple(s)
    return tuple(x for x in seq if not is_noop(x))


def _unique(keys: Any) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(keys))


def all_shape_types(x: Any) -> tuple[Any, ...]:
    """The type keys of every change in ``x`` (a change, a sequence, a trace or a squashed trace), in order of
    first appearance."""
    return _shape_types(x, {})


def _shape_types(x: Any, memo: dict[int, tuple[Any, ...]]) -> tuple[Any, ...]:
    # Traces share their merged branches by reference; memoising by identity keeps a walk linear in the graph
    # (a chain of k residual blocks nests 2**k copies).
    if isinstance(x, DeltaShape):
        return (x.type_key(),)
    hit = memo.get(id(x))
    if hit is None:
        trace = getattr(x, "trace", None)
        if trace is not None:
            hit = _shape_types(trace, memo)
        elif isinstance(x, ParallelShapes):
            hit = _shape_types(x.branches, memo)
        else:
            hit = _unique(k for e in x for k in _shape_types(e, memo))
        memo[id(x)] = hit
    return hit


def order_shapes(s: Sequence[DeltaShape], order: Sequence[Any] | None = None) -> tuple[DeltaShape, ...]:
    """``s`` with the same mapping, reordered as far as the algebra allows to follow ``order`` (type keys;
    default: order of first appearance). A bubble sort, as upstream: changes cannot always swap places."""
    s = list(s)
    order = list(all_shape_types(s) if order is None else order)

    def rank(x: DeltaShape) -> int:
        key = x.type_key()
        return order.index(key) if key in order else len(order)

    nlook = len(s)
    swapped = True
    while swapped:
        nlook -= 1
        swapped = False
        for i in range(nlook):
            s1, s2 = s[i], s[i + 1]
            if rank(s1) >= rank(s2):
                n1, n2 = swap_shapes(s1, s2)
                swapped |= n1 != s1
                s[i], s[i + 1] = n1, n2
    return tuple(s)


def _squash_sequence(s: tuple[DeltaShape, ...]) -> tuple[DeltaShape, ...]:
    while s:
        acc: tuple[DeltaShape, ...] = (s[-1],)
        for x in reversed(s[:-1]):
            acc = combine(x, acc)
        squashed = filter_noops(acc)
        if squashed == s:
            return s
        s = squashed
    return s


@dataclasses.dataclass(frozen=True)
class ParallelShapes:
    """Parallel branches of a trace whose squashed forms differ (one per distinct form), so they cannot be
    squashed into one; a squashed trace that starts with one has not resolved to a single mapping.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.ParallelShapes(((ng.search.ShapeAdd(1),), (ng.search.ShapeAdd(2),))).branches[1]
        (ShapeAdd(2,),)
    """

    branches: tuple[tuple[Any, ...], ...]


def is_resolved(squashed: tuple[Any, ...]) -> bool:
    """True when a squashed trace is a plain sequence of changes (no unresolved parallel branches)."""
    return not any(isinstance(x, ParallelShapes) for x in squashed)


def _squash_element(e: Any, order: tuple[Any, ...], memo: dict[int, Any]) -> tuple[Any, ...]:
    if isinstance(e, DeltaShape):
        return (e,)
    hit = memo.get(id(e))
    if hit is None:
        branches = _unique(_squash_trace(b, order, memo) for b in e)
        hit = branches[0] if len(branches) == 1 else (ParallelShapes(branches),)
        memo[id(e)] = hit
    return hit


def _squash_pair(t1: tuple[Any, ...], t2: tuple[Any, ...], order: Sequence[Any]) -> tuple[Any, ...]:
    if is_resolved(t1) and is_resolved(t2):
        return _squash_sequence(order_shapes(t1 + t2, order))
    if is_resolved(t1) or not is_resolved(t2):
        return t1 + t2
    rest = t1[1:]
    return (t1[0], *(_squash_sequence(order_shapes(rest + t2, order)) if rest else t2))


def squash_shapes(x: Any, order: Sequence[Any] | None = None) -> tuple[Any, ...]:
    """The shortest equivalent form of a change, a sequence of changes or a ``ShapeTrace`` (NaiveGAflux
    ``squashshapes``); ``order`` lists type keys in the preferred order (default: order of first appearance).

    A trace through a merge whose branches squash differently gives ``(ParallelShapes(...), *rest)``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.squash_shapes([ng.search.ShapeAdd(1, 2), ng.search.ShapeAdd(3, 4)])
        (ShapeAdd(4, 6),)
        >>> s = ng.search
        >>> s.squash_shapes([s.ShapeAdd(4, 2), s.ShapeDiv(2, 2), s.ShapeMul(2, 2), s.ShapeAdd(-4, -2)])
        (ShapeDiv(2, 2), ShapeMul(2, 2))
    """
    if isinstance(x, DeltaShape):
        return (x,)
    return _squash_trace(x, all_shape_types(x) if order is None else tuple(order), {})


def _squash_trace(x: Any, order: tuple[Any, ...], memo: dict[int, Any]) -> tuple[Any, ...]:
    elements = tuple(getattr(x, "trace", x))
    if all(isinstance(e, DeltaShape) for e in elements):
        return _squash_sequence(order_shapes(elements, order))
    parts = [_squash_element(e, order, memo) for e in elements]
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = _squash_pair(part, acc, order)
    return acc


def fshape(s: Any, shape: Sequence[int]) -> Spatial:
    """The spatial shape after ``s`` (a change, a sequence, a trace or a squashed trace) maps ``shape``.

    Parallel branches must agree on the result, else ``ShapeError``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.fshape([ng.search.ShapeAdd(-2, -2), ng.search.ShapeDiv(2, 2)], (32, 31))
        (15, 15)
    """
    shape = tuple(int(v) for v in shape)
    if isinstance(s, DeltaShape):
        return s.apply(shape)
    return _fshape(s, shape, {})


def _fshape(s: Any, shape: Spatial, memo: dict[tuple[int, Spatial], Spatial]) -> Spatial:
    for e in getattr(s, "trace", s):
        if isinstance(e, DeltaShape):
            shape = e.apply(shape)
            continue
        key = (id(e), shape)
        if key not in memo:
            branches = e.branches if isinstance(e, ParallelShapes) else e
            outs = {_fshape(b, shape, memo) for b in branches}
            if len(outs) != 1:
                raise ShapeError(f"parallel branches map shape {shape} to different shapes {sorted(outs)}")
            memo[key] = outs.pop()
        shape = memo[key]
    return shape


def _diff_sequences(s1: tuple[DeltaShape, ...], s2: tuple[DeltaShape, ...]) -> tuple[DeltaShape, ...]:
    first = next((i for i, (a, b) in enumerate(zip(s1, s2)) if a != b), min(len(s1), len(s2)))
    d1, d2 = s1[first:], s2[first:]
    if not d1 and not d2:
        return ()
    t1, t2 = all_shape_types(d1), all_shape_types(d2)
    front = tuple(t for t in t1 if t in t2)
    back = tuple(t for t in t1 if t not in t2) + tuple(t for t in t2 if t not in t1)
    o1 = squash_shapes(d1, front + back)
    o2 = squash_shapes(d2, front + back)
    if o1 != s1 or o2 != s2:
        return _diff_sequences(o1, o2)
    return (*revert(o2), *o1)


def shape_diff(s1: Any, s2: Any) -> tuple[DeltaShape, ...]:
    """The changes that turn mapping ``s2`` into ``s1`` (NaiveGAflux ``Δshapediff``); empty when they agree.

    Both are changes or resolved sequences of changes (squash traces first); unresolved parallel branches raise
    ``ShapeError``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.search.shape_diff(ng.search.ShapeAdd(2, 3), ng.search.ShapeAdd(3, 4))
        (ShapeAdd(-1, -1),)
        >>> s = ng.search
        >>> s.shape_diff([s.ShapeAdd(2, 2), s.ShapeDiv(2, 2)], [s.ShapeAdd(2, 2), s.ShapeDiv(2, 2)])
        ()
    """
    if isinstance(s1, DeltaShape) and isinstance(s2, DeltaShape):
        if s1.ndims_in != s2.ndims_in:
            raw: tuple[DeltaShape, ...] = (s1, s2)
        else:
            raw = () if s1 == s2 else (revert(s2), s1)
    else:
        s1 = (s1,) if isinstance(s1, DeltaShape) else tuple(s1)
        s2 = (s2,) if isinstance(s2, DeltaShape) else tuple(s2)
        if not (is_resolved(s1) and is_resolved(s2)):
            raise ShapeError("shape_diff: cannot diff traces with unresolved parallel branches")
        raw = _diff_sequences(s1, s2)
    return filter_noops(squash_shapes(raw)) if raw else ()
