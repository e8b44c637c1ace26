"""Vertex-level graph mutations that change a vertex's op in place: activation function and kernel size.

Also the helpers every vertex-level graph mutation shares.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Sequence
from typing import Any, cast

import jax

from .._errors import GraphError
from .._random import salt
from ..graph import Conv, Graph, resize_kernel
from ..graph.internal import check_activation
from ..search import AbstractParSpace, ParSpace
from . import _draw
from ._base import Mutation, report


def vertex_key(key: jax.Array, name: str) -> jax.Array:
    """A key for vertex ``name`` that does not shift when other vertices change."""
    return jax.random.fold_in(key, salt(name))


def output_shapes(graph: Graph) -> tuple:
    return tuple(graph.shape(o) for o in graph.output_names)


def unique_name(spec: Any, base: str, taken: Any = ()) -> str:
    """``base`` if free in ``spec`` (and not in ``taken``), else ``base_2``, ``base_3``, ...

    A name that already ends in ``_<n>`` counts on from ``n`` (``d1_2`` -> ``d1_3``), so names do not grow
    with every collision.
    """
    if base not in spec and base not in taken:
        return base
    match = re.fullmatch(r"(.*)_(\d+)", base)
    root, i = (match.group(1), int(match.group(2))) if match else (base, 1)
    name = base
    while name in spec or name in taken:
        i += 1
        name = f"{root}_{i}"
    return name


class DrawRng:
    """A host generator with numpy's ``integers(n)`` that draws through ``_draw.uniform`` (mockable in tests)."""

    def __init__(self, key: jax.Array, *salts: str | int):
        self.key, self.salts, self.count = key, salts, 0

    def integers(self, n: int) -> int:
        self.count += 1
        return min(int(_draw.uniform(self.key, None, *self.salts, self.count) * n), n - 1)


class VertexLevel(Mutation):
    """Base of vertex-level graph mutations: ``m(key, graph, names) -> graph``."""

    vertex_level = True

    def _names(self, graph: Any, names: Any) -> tuple[str, ...]:
        """Checks the call and returns the names still in the graph (an earlier mutation may have removed some)."""
        where = type(self).__name__
        if not isinstance(graph, Graph):
            raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")
        if names is None or isinstance(names, str):
            raise TypeError(
                f"{where} is vertex-level: call it as m(key, graph, names) with a sequence of vertex names, "
                f"or wrap it: ng.VertexMutation({where}(...)); got names={names!r}"
            )
        return tuple(n for n in names if n in graph.spec)


@dataclasses.dataclass(frozen=True, init=False)
class ActivationFunctionMutation(VertexLevel):
    """Sets the activation of each vertex whose op has one (Dense, Conv, BatchNorm) to a random choice.

    Other vertices are left alone; weights are kept. Activations are names (``"relu"``, ``"elu"``, ...).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> ng.VertexMutation(ng.ActivationFunctionMutation("elu"))(jax.random.key(1), g).op("d").activation
        'elu'
    """

    activations: tuple[str, ...]

    def __init__(self, *activations: str):
        if len(activations) == 1 and isinstance(activations[0], (list, tuple)):
            activations = tuple(activations[0])
        if not activations:
            raise ValueError("ActivationFunctionMutation: give at least one activation name, e.g. 'relu'")
        for a in activations:
            check_activation(a, "ActivationFunctionMutation")
        object.__setattr__(self, "activations", tuple(activations))

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        names = [n for n in self._names(graph, names) if getattr(graph.op(n), "has_activation", False)]
        if not names:
            return graph
        draws = _draw.uniform(key, len(names), "activation")
        changes, done = {}, {}
        for n, u in zip(names, draws):
            act = self.activations[min(int(u * len(self.activations)), len(self.activations) - 1)]
            op: Any = graph.op(n)  # has_activation: a dataclass with an activation field
            if op.activation != act:
                changes[n] = (op.replace(activation=act), graph.inputs(n))
                done[n] = [op.activation, act]
        if not changes:
            return graph
        report("ActivationFunctionMutation", changes=done)
        return graph.replace(spec=graph.spec.replace_entries(changes))


def _as_space(delta: tuple, where: str) -> AbstractParSpace | None:
    """None means one ``range(-a, a + 1)`` per spatial axis of whatever rank the conv has (a single int)."""
    if len(delta) == 1 and isinstance(delta[0], AbstractParSpace):
        return delta[0]
    if not delta or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) and int(a) >= 0 for a in delta):
        raise ValueError(
            f"{where}: expected a parameter space of kernel size changes (ng.ParSpace(...)) or one non-negative int "
            f"per spatial axis (the largest change), got {delta!r}"
        )
    if len(delta) == 1:
        return None
    return ParSpace(*(range(-int(a), int(a) + 1) for a in delta))


@dataclasses.dataclass(frozen=True, init=False)
class KernelSizeMutation(VertexLevel):
    """Changes the kernel size of each Conv vertex by a drawn amount, keeping its output shape.

    ``KernelSizeMutation(absdelta)`` draws a change in ``-absdelta..absdelta`` for every spatial axis;
    ``KernelSizeMutation(a1, a2)`` one range per axis (2-D convs only); ``KernelSizeMutation(space)`` draws the
    change tuple from a parameter space (``ng.ParSpace``, ``ng.search.Singleton2DParSpace(1)``...). The new size is
    clamped to ``1..maxsize`` per axis; ``maxsize`` is None (no limit), an int or tuple, or a function
    ``(graph, name) -> tuple``. Weights: central taps are kept, new taps are small and random; padding is
    recomputed (``ng.resize_kernel``). Other vertices, and convs of another rank than the space's, are left alone.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(7, 7, 2))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("c", ng.Conv(2, (3, 5)), inp))
        >>> m = ng.VertexMutation(ng.KernelSizeMutation(ng.search.Singleton2DParSpace(4), maxsize=(4, 10)))
        >>> g2 = m(jax.random.key(1), g)
        >>> g2.op("c").kernel_size, g2.shape("c")
        ((4, 9), (7, 7, 2))
    """

    space: AbstractParSpace | int
    maxsize: Any = None

    def __init__(self, *delta: Any, maxsize: Any = None):
        space = _as_space(delta, "KernelSizeMutation")
        object.__setattr__(self, "space", int(delta[0]) if space is None else space)
        if maxsize is not None and not callable(maxsize):
            m = (maxsize,) if isinstance(maxsize, numbers.Integral) else tuple(maxsize)
            if not m or not all(isinstance(v, numbers.Integral) and int(v) >= 1 for v in m):
                raise ValueError(
                    f"KernelSizeMutation: maxsize must be None, positive ints or a function, got {maxsize!r}"
                )
            maxsize = m
        object.__setattr__(self, "maxsize", maxsize)

    def _limits(self, graph: Graph, name: str, rank: int) -> tuple[float, ...]:
        m = self.maxsize
        if m is None:
            return (float("inf"),) * rank
        if callable(m):
            m = m(graph, name)
            m = (m,) if isinstance(m, numbers.Real) else tuple(m)
        return tuple(m) * rank if len(m) == 1 else tuple(m)

    def _delta(self, key: jax.Array, name: str, rank: int) -> tuple[int, ...] | None:
        rng = DrawRng(key, "kernel", name)
        if isinstance(self.space, int):
            a = self.space
            return tuple(rng.integers(2 * a + 1) - a for _ in range(rank))
        if self.space.ndims != rank:
            return None
        d = self.space.sample(rng)
        return tuple(d) if isinstance(d, tuple) else (d,)

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        done = {}
        for name in self._names(graph, names):
            op = graph.op(name)
            if not isinstance(op, Conv):
                continue
            cur = cast(tuple[int, ...], op.kernel_size)  # the spec's ops are resolved: one size per spatial axis
            delta = self._delta(key, name, len(cur))
            if delta is None:
                continue
            limits = self._limits(graph, name, len(cur))
            if len(limits) != len(cur):
                raise GraphError(f"KernelSizeMutation: maxsize gives {limits} for the {len(cur)}-D conv {name!r}")
            new = tuple(_clamp(c + d, lim) for c, d, lim in zip(cur, delta, limits))
            if new == cur:
                continue
            try:
                graph = resize_kernel(graph, name, new, key=vertex_key(key, name))
            except GraphError:
                continue
            done[name] = [list(cur), list(new)]
        if done:
            report("KernelSizeMutation", changes=done)
        return graph


def _clamp(size: int, limit: float) -> int:
    """Julia's ``clamp(size, 1, limit)``: the upper limit wins if they cross."""
    return int(limit) if size > limit else max(size, 1)
