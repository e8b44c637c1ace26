"""The ``Graph`` pytree, symbolic vertices, building and applying graphs."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import GraphError, ShapeError
from .._random import host_rng, salt
from . import _provenance
from ._ops import Input, Op, check_weight_init
from ._ops_shape import Add, Concat
from ._spec import GraphSpec

Params = dict[str, dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """A neural network as an immutable pytree: a static ``spec`` and array leaves ``params`` and ``state``.

    Conventions:
        * ``spec`` (a ``GraphSpec``) lives in the treedef: it is hashable, and two graphs with equal specs share
          every compiled function (``jax.jit`` keys on it), whatever their parameter values.
        * ``params[name][param]`` are the trainable arrays of vertex ``name`` (only vertices with parameters have
          an entry); ``state[name][...]`` the non-trainable ones (batch-norm running statistics).
        * Arrays are float32, features channels-last; a vertex's neurons are the last axis of its output.
          Dense kernels are ``(nin, nout)``, conv kernels ``(*kernel_size, nin, nout)``.
        * ``vertex_names`` is topological, inputs first.
        * A graph is never changed in place: surgery and training return new graphs.
        * ``==`` is identity (comparing arrays elementwise has no single truth value); compare ``spec`` and the
          leaves instead.

    ``jax.jit``, ``jax.grad`` and ``jax.tree_util`` work on a graph directly. Build one with ``ng.build_graph``.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> d1 = ng.vertex("d1", ng.Dense(8, activation="relu"), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(3), d1))
        >>> g(jnp.ones((4, 5))).shape, g.nout("d1"), g.nin("d2")
        ((4, 3), 8, (8,))
    """

    spec: GraphSpec
    params: Params
    state: Params

    @property
    def vertex_names(self) -> tuple[str, ...]:
        """Every vertex name in topological order, inputs first."""
        return self.spec.names

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.spec.inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.spec.outputs

    def nout(self, name: str) -> int:
        """The number of output neurons of vertex ``name``."""
        return self.spec.nout(name)

    def nin(self, name: str) -> tuple[int, ...]:
        """The sizes of vertex ``name``'s inputs, one per input edge."""
        return self.spec.nin(name)

    def op(self, name: str) -> Op:
        return self.spec[name].op

    def inputs(self, name: str) -> tuple[str, ...]:
        """The names of the inputs of vertex ``name``, in argument order."""
        return self.spec[name].inputs

    def outputs(self, name: str) -> tuple[str, ...]:
        """The names of the vertices that consume vertex ``name``."""
        return self.spec.consumers(name)

    def shape(self, name: str) -> tuple[int, ...]:
        """The feature shape (no batch axis) vertex ``name`` outputs."""
        return self.spec[name].shape

    def replace(self, **changes: Any) -> Graph:
        new = dataclasses.replace(self, **changes)
        if changes.get("params", self.params) is self.params:
            # The same parameter arrays: ng.remap_like treats both graphs as one.
            _provenance.share(new, self)
        return new

    def __getstate__(self) -> dict[str, Any]:
        # Where the arrays came from (ng.remap_like) is a record of this process, not part of the graph.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __call__(self, *xs: Any) -> Any:
        """Inference (batch-norm uses running statistics, no dropout); compiled once per spec and input shape."""
        return _infer(self, _pack_inputs(self.spec, xs))

    def __repr__(self) -> str:
        return (
            f"Graph({len(self.spec.vertices)} vertices, inputs={list(self.spec.inputs)}, "
            f"outputs={list(self.spec.outputs)}, nparams={nparams(self)})"
        )


jax.tree_util.register_dataclass(Graph, data_fields=["params", "state"], meta_fields=["spec"])


class Vertex:
    """A symbolic vertex, used only to describe a graph for ``build_graph``. Make with ``ng.vertex`` & co.

    Example:
        >>> import naivega_jax as ng
        >>> v = ng.vertex("d", ng.Dense(3), ng.input_vertex("in", shape=(5,)))
        >>> v.name, [i.name for i in v.inputs]
        ('d', ['in'])
    """

    __slots__ = ("init", "inputs", "name", "op", "shield")

    def __init__(self, name: str, op: Op, inputs: tuple[Vertex, ...], init: Any = "default", shield=None):
        self.name, self.op, self.inputs, self.init, self.shield = name, op, inputs, init, shield

    def __repr__(self) -> str:
        return f"Vertex({self.name!r}, {self.op!r}, inputs={[v.name for v in self.inputs]})"


def input_vertex(name: str, shape: Sequence[int]) -> Vertex:
    """An input of a graph; ``shape`` is the feature shape without batch: ``(C,)``, ``(L, C)`` or ``(H, W, C)``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.input_vertex("in", shape=(28, 28, 1)).op.shape
        (28, 28, 1)
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(shape)
    except TypeError:
        raise GraphError(f"input_vertex {name!r}: shape must be a tuple of positive ints, got {shape!r}") from None
    try:
        op = Input(shape)
    except GraphError as e:
        raise GraphError(f"input_vertex {name!r}: {e}") from None
    return Vertex(name, op, ())


def vertex(name: str, op: Op, *inputs: Vertex, init: Any = "default", shield: Any = None) -> Vertex:
    """A vertex applying ``op`` to ``inputs``; ``init`` is ``"default"``, ``"identity"``, ``"zero"`` or a
    ``ng.graph.PartialIdentityInit``.

    ``shield`` protects the vertex from mutation: None (not shielded), True (shielded from every mutation) or a
    sequence of mutation types (classes or class names) still allowed on it.

    Example:
        >>> import naivega_jax as ng
        >>> ng.vertex("d", ng.Dense(3), ng.input_vertex("in", shape=(5,))).name
        'd'
    """
    for v in inputs:
        if not isinstance(v, Vertex):
            raise GraphError(f"vertex {name!r}: inputs must be vertices made by ng.vertex & co., got {v!r}")
    if not isinstance(op, Op):
        raise GraphError(f"vertex {name!r}: op must be an ng op (ng.Dense, ng.Conv, ...), got {op!r}")
    check_weight_init(init, f"vertex {name!r}")
    return Vertex(name, op, tuple(inputs), init, shield_names(shield, f"vertex {name!r}"))


def shield_names(shield: Any, where: str) -> tuple[str, ...] | None:
    """Normalises a shield argument: None, True (nothing allowed), or allowed mutation classes or names."""
    if shield is None or shield is False:
        return None
    if shield is True:
        return ()
    try:
        names = tuple(s if isinstance(s, str) else s.__name__ for s in shield)
    except (TypeError, AttributeError):
        raise GraphError(
            f"{where}: shield must be None, True or a sequence of mutation types/names, got {shield!r}"
        ) from None
    return tuple(sorted(set(names)))


def concat(name: str, *inputs: Vertex) -> Vertex:
    """Concatenation of ``inputs`` along the channel axis.

    Example:
        >>> import naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> type(ng.concat("c", inp, inp).op).__name__
        'Concat'
    """
    return vertex(name, Concat(), *inputs)


def add(name: str, *inputs: Vertex) -> Vertex:
    """Elementwise sum of ``inputs`` (equal shapes).

    Example:
        >>> import naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> type(ng.add("a", inp, inp).op).__name__
        'Add'
    """
    return vertex(name, Add(), *inputs)


def _as_vertices(vs: Vertex | Sequence[Vertex], what: str) -> tuple[Vertex, ...]:
    vs = (vs,) if isinstance(vs, Vertex) else tuple(vs)
    for v in vs:
        if not isinstance(v, Vertex):
            raise GraphError(f"build_graph: {what} must be vertices, got {v!r}")
    return vs


def build_graph(key: jax.Array, *, inputs: Vertex | Sequence[Vertex], outputs: Vertex | Sequence[Vertex]) -> Graph:
    """Validates the graph described by symbolic vertices and initialises its parameters from ``key``.

    Each vertex's parameters come from ``key`` folded with the vertex's name, so adding a vertex elsewhere does
    not change them.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> g.vertex_names, ng.nparams(g)
        (('in', 'd'), 18)
    """
    ins, outs = _as_vertices(inputs, "inputs"), _as_vertices(outputs, "outputs")
    table: dict[str, Vertex] = {}
    stack = list(outs) + list(ins)
    while stack:
        v = stack.pop()
        other = table.get(v.name)
        if other is None:
            table[v.name] = v
            stack.extend(v.inputs)
        elif other is not v:
            raise GraphError(f"duplicate vertex name {v.name!r}: two different vertices share it")
    spec = GraphSpec.create(
        [(v.name, v.op, [i.name for i in v.inputs]) for v in table.values()],
        [v.name for v in ins],
        [v.name for v in outs],
        {name: v.shield for name, v in table.items() if v.shield is not None},
    )
    return init_graph(key, spec, {name: v.init for name, v in table.items()})


def init_graph(key: jax.Array, spec: GraphSpec, inits: Mapping[str, Any] | None = None) -> Graph:
    """A graph for ``spec`` with freshly initialised parameters (``inits`` maps names to weight inits).

    Example:
        >>> import jax, naivega_jax as ng
        >>> spec = ng.GraphSpec.create([("in", ng.graph.Input((5,)), ()), ("d", ng.Dense(3), ("in",))], ["in"], ["d"])
        >>> g = ng.graph.init_graph(jax.random.key(0), spec, {"d": "zero"})
        >>> float(abs(g.params["d"]["kernel"]).sum())
        0.0
    """
    inits = dict(inits or {})
    params, state = {}, {}
    for v in spec.vertices:
        p, s = init_vertex(key, spec, v.name, inits.get(v.name, "default"))
        if p:
            params[v.name] = p
        if s:
            state[v.name] = s
    return Graph(spec, params, state)


def init_vertex(key: jax.Array, spec: GraphSpec, name: str, weight_init: Any = "default"):
    """Fresh ``(params, state)`` of one vertex of ``spec`` as jnp arrays, drawn from ``key`` and the name."""
    check_weight_init(weight_init, f"vertex {name!r}")
    p, s = spec[name].op.init(host_rng(key, name), spec.input_shapes(name), weight_init)
    # device_put, not jnp.asarray: asarray compiles a conversion per new array shape (~40 ms each on CPU).
    return {k: jax.device_put(a) for k, a in p.items()}, {k: jax.device_put(a) for k, a in s.items()}


def _pack_inputs(spec: GraphSpec, xs: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(xs) == 1 and isinstance(xs[0], Mapping):
        xs = tuple(_get_input(xs[0], name) for name in spec.inputs)
    elif len(xs) == 1 and isinstance(xs[0], (tuple, list)) and len(spec.inputs) > 1:
        xs = tuple(xs[0])
    if len(xs) != len(spec.inputs):
        raise GraphError(f"the graph takes {len(spec.inputs)} input(s) {list(spec.inputs)}, got {len(xs)}")
    return tuple(jnp.asarray(x) if isinstance(x, (np.ndarray, list, float, int)) else x for x in xs)


def _get_input(mapping: Mapping[str, Any], name: str) -> Any:
    try:
        return mapping[name]
    except KeyError:
        raise GraphError(f"no value given for graph input {name!r}; got keys {list(mapping)}") from None


def _check_input_shapes(spec: GraphSpec, xs: tuple[Any, ...]) -> None:
    for name, x in zip(spec.inputs, xs):
        expected = spec[name].shape
        if not hasattr(x, "shape") or tuple(x.shape[1:]) != expected or len(x.shape) != len(expected) + 1:
            got = getattr(x, "shape", type(x).__name__)
            raise ShapeError(
                f"input {name!r} expects arrays of shape (batch, {', '.join(map(str, expected))}), got {got}"
            )
    batches = {name: x.shape[0] for name, x in zip(spec.inputs, xs)}
    if len(set(batches.values())) > 1:
        raise ShapeError(f"graph inputs must share one batch size, got batch sizes {batches}")


def forward(graph: Graph, xs: tuple[Any, ...], *, train: bool, key: jax.Array | None, probes=None):
    """Runs the graph on packed inputs; returns ``(outputs tuple, new_state)``. Traceable (no jit of its own).

    ``probes`` (optional, name -> ``(batch, nout)`` zeros from ``ng.graph.utility_probes``) multiply those vertices'
    outputs by ``1 + probe``: values are unchanged and the probe's gradient is ``sum_spatial(output * grad)``.
    """
    spec = graph.spec
    _check_input_shapes(spec, xs)
    values: dict[str, Any] = dict(zip(spec.inputs, xs))
    new_state = dict(graph.state)
    for v in spec.vertices:
        if v.name in values:
            continue
        vkey = None if key is None else jax.random.fold_in(key, salt(v.name))
        y, s = v.op.apply(
            graph.params.get(v.name, {}),
            graph.state.get(v.name, {}),
            tuple(values[i] for i in v.inputs),
            train=train,
            key=vkey,
        )
        if s:
            new_state[v.name] = {**graph.state.get(v.name, {}), **s}
        if probes is not None and v.name in probes:
            y = y * (1 + jnp.reshape(probes[v.name], (y.shape[0],) + (1,) * (y.ndim - 2) + (y.shape[-1],)))
        values[v.name] = y
    return tuple(values[o] for o in spec.outputs), new_state


def _unpack(spec: GraphSpec, ys: tuple[Any, ...]) -> Any:
    return ys[0] if len(spec.outputs) == 1 else ys


@jax.jit
def _infer(graph: Graph, xs: tuple[Any, ...]) -> Any:
    ys, _ = forward(graph, xs, train=False, key=None)
    return _unpack(graph.spec, ys)


@functools.partial(jax.jit, static_argnames="train")
def _apply(graph: Graph, xs: tuple[Any, ...], train: bool, key: jax.Array | None):
    ys, state = forward(graph, xs, train=train, key=key)
    return _unpack(graph.spec, ys), graph.replace(state=state)


def apply(graph: Graph, *xs: Any, train: bool = False, key: jax.Array | None = None) -> tuple[Any, Graph]:
    """Runs ``graph``; in training mode dropout is active and batch-norm statistics update.

    Returns ``(y, graph_with_new_state)``. ``key`` is needed in training mode when the graph has dropout.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("bn", ng.BatchNorm(), inp))
        >>> y, g2 = ng.apply(g, jnp.arange(6.0).reshape(2, 3), train=True, key=jax.random.key(1))
        >>> [round(m, 4) for m in g2.state["bn"]["mean"].tolist()]
        [0.15, 0.25, 0.35]
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"apply: graph must be an ng.Graph, got {type(graph).__name__}")
    return _apply(graph, _pack_inputs(graph.spec, xs), bool(train), key)


def nparams(graph: Graph) -> int:
    """The number of trainable parameters (batch-norm statistics excluded).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> ng.nparams(ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp)))
        18
    """
    return int(sum(np.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(graph.params)))
