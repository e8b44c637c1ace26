"""Vertex-level structural mutations: add or remove vertices and edges (NaiveGAflux ``src/mutation/graph.jl``).

Each processes its vertices one after the other on the changing graph. A change that cannot be made (a size cycle,
sizes that cannot be aligned, a result that no longer validates or would change the graph's output shapes) is
skipped, so the mutation always returns a valid graph with the same output shapes. Size problems (a size cycle,
sizes that cannot be aligned) are logged as warnings as upstream does; changes that simply do not apply to a
vertex (a consumer that cannot take the spliced inputs, a result of another shape) are logged at debug level.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import jax

from .._errors import GraphError, ShapeError, SizeChangeError
from ..graph import (
    Add,
    Concat,
    Graph,
    Op,
    Vertex,
    add_edge,
    derive,
    init_activation_utility,
    input_vertex,
    insert_vertex,
    remove_edge,
    remove_vertex,
    validate_graph,
)
from ..graph.internal import init_vertex
from ..search import ArchSpaceLike, add_edge_candidates
from . import _draw
from ._base import probability, report
from ._generic import log_prefix
from ._graph_ops import VertexLevel, output_shapes, unique_name, vertex_key
from ._shield import allow_mutation

logger = logging.getLogger("naivega_jax.mutation")


def _checked(old: Graph, new: Graph) -> Graph | None:
    """``new`` if it validates and keeps ``old``'s output shapes, else None."""
    if output_shapes(new) != output_shapes(old):
        return None
    try:
        return validate_graph(new)
    except GraphError:
        return None


def _has_utility_state(graph: Graph) -> bool:
    return any("utility" in entry for entry in graph.state.values())


@dataclasses.dataclass(frozen=True)
class RandomConsumers:
    """An ``outselect`` for ``AddVertexMutation`` that rewires a random part of a vertex's readers: each with
    probability ``p``, and one at random when none was drawn (AutoFlux's ``outselect``: ``randsubseq(outs, 0.5)``,
    else ``[rand(outs)]``). A graph output counts as one reader: if drawn, the graph's output moves to the new vertex.

    Called as ``RandomConsumers(p)(key, readers)`` with the readers' names (``"<output>"`` for the graph output slot);
    returns the drawn ones in order.

    Example:
        >>> import jax, naivega_jax as ng
        >>> pick = ng.mutation.RandomConsumers(0.5)
        >>> readers = ("a", "b", "c", "d")
        >>> len(pick(jax.random.key(0), readers)) >= 1, pick(jax.random.key(1), ("only",))
        (True, ('only',))
    """

    p: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "p", probability(self.p, "RandomConsumers(p=...)"))

    def __call__(self, key: jax.Array, readers: tuple[str, ...]) -> tuple[str, ...]:
        if not readers:
            return ()
        draws = _draw.uniform(key, len(readers), "outselect")
        chosen = tuple(r for r, u in zip(readers, draws) if u < self.p)
        return chosen or (readers[_draw.choose(key, len(readers), "outselect-one")],)


#: The reader name ``RandomConsumers`` sees for a graph output.
GRAPH_OUTPUT = "<output>"


@dataclasses.dataclass(frozen=True)
class AddVertexMutation(VertexLevel):
    """Inserts what ``space`` draws after each vertex ``v``, with ``outsize=nout(v)`` (so no size changes).

    ``space`` is an architecture space called as ``space(key, name, in_vertex, outsize=..., weight_init=...)``
    (``ng.ArchSpace(ng.DenseSpace(...))``, a fork, a residual block...).

    With the default ``weight_init="identity"`` the *linear part* of every new Dense or Conv layer is the identity
    (an identity kernel, zero bias; a fork's paths are partial identities that concatenate to the identity; a
    residual block's sum is halved back), but the activation the space draws for it is applied as it is. So the
    graph computes exactly the same only where each new activation is the identity on the values it receives:
    always for ``"identity"``; for ``"relu"``, ``"elu"`` and ``"leaky_relu"`` when those values are >= 0 (after a
    relu, say); for ``"relu6"`` in [0, 6] and ``"hard_tanh"`` in [-1, 1]. Otherwise the function changes: a relu
    after a vertex with negative outputs zeroes them, ``"selu"`` scales positive values by 1.05, ``"tanh"`` or
    ``"gelu"`` change every non-zero value. A new ``BatchNorm`` (unit scale, zero bias, running mean 0 and variance 1)
    divides by ``sqrt(1 + epsilon)`` in inference (a relative change of 5e-6 at the default epsilon) and normalises
    by each batch's statistics in training. NaiveGAflux samples the new layers' activations too; for an insertion
    that keeps the function everywhere, give the space only ``"identity"`` activations and no batch norm.
    ``outselect`` picks which of ``v``'s readers read the new part instead: None (the default) for all, and the
    graph output if ``v`` is one; ``ng.mutation.RandomConsumers(p)`` for a random part of them, the graph output
    included
    (AutoFlux's choice); or a function ``outselect(consumers) -> consumers`` (the graph output stays ``v``).
    New vertices are named ``<v>_1`` (and as the space names its parts). Vertices where
    the space cannot make a layer (a dense space on a feature map, a conv space on a vector) are skipped.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d1", ng.Dense(5), inp))
        >>> m = ng.AddVertexMutation(ng.ArchSpace(ng.DenseSpace(4, "relu")))
        >>> g2 = m(jax.random.key(1), g, ["in"])
        >>> g2.vertex_names, g2.nin("d1")
        (('in', 'in_1', 'd1'), (3,))
        >>> x = jnp.array([[1.0, 2.0, 3.0], [-1.0, 2.0, 3.0]])  # the new relu is the identity on the first row only
        >>> change = jnp.abs(g2(x) - g(x)).max(axis=1)
        >>> float(change[0]), bool(change[1] > 0)
        (0.0, True)
    """

    space: ArchSpaceLike
    outselect: Callable | None = None
    weight_init: Any = "identity"

    def __post_init__(self):
        if not callable(self.space):
            raise TypeError(f"AddVertexMutation: space must be an architecture space, got {self.space!r}")
        if self.outselect is not None and not callable(self.outselect):
            raise TypeError(
                "AddVertexMutation: outselect must be None, ng.mutation.RandomConsumers(p) or a function, "
                f"got {self.outselect!r}"
            )

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        for name in self._names(graph, names):
            new = self._insert(vertex_key(key, name), graph, name)
            if new is not None:
                graph = new
        return graph

    def _sample(self, key: jax.Array, graph: Graph, name: str):
        inp = input_vertex(name, graph.shape(name))
        base = unique_name(graph.spec, f"{name}_1")
        for _ in range(20):
            try:
                out = self.space(key, base, inp, outsize=graph.nout(name), weight_init=self.weight_init)
            except ShapeError as e:
                logger.debug("%sAddVertexMutation: nothing to add after %s: %s", log_prefix(), name, e)
                return None, []
            new = _new_vertices(out, inp)
            if not any(v.name in graph.spec for v in new):
                return out, new
            base = unique_name(graph.spec, base, taken={base})
        return None, []

    def _insert(self, key: jax.Array, graph: Graph, name: str) -> Graph | None:
        k_space, k_init = jax.random.split(key)
        out, new = self._sample(k_space, graph, name)
        if not new:
            return None
        spec = graph.spec
        consumers = tuple(spec.consumers(name))
        to_output = name in spec.outputs
        if isinstance(self.outselect, RandomConsumers):
            readers = consumers + ((GRAPH_OUTPUT,) if to_output else ())
            drawn = self.outselect(jax.random.fold_in(key, 2), readers)
            selected, to_output = tuple(c for c in drawn if c != GRAPH_OUTPUT), GRAPH_OUTPUT in drawn
        elif self.outselect is not None:
            selected, to_output = tuple(self.outselect(consumers)), False
        else:
            selected = consumers
        changes = {c: (spec[c].op, tuple(out.name if i == name else i for i in spec[c].inputs)) for c in selected}
        for v in new:
            changes[v.name] = (v.op, tuple(name if i.name == name else i.name for i in v.inputs))
        outputs = spec.outputs
        if to_output:
            outputs = tuple(out.name if o == name else o for o in outputs)
        shields = {v.name: v.shield for v in new if v.shield is not None}
        try:
            new_spec = spec.replace_entries(changes, outputs=outputs, shields=shields)
            params, state = dict(graph.params), dict(graph.state)
            for v in new:
                p, s = init_vertex(k_init, new_spec, v.name, v.init)
                if p:
                    params[v.name] = p
                if s:
                    state[v.name] = s
            result = derive(Graph(new_spec, params, state), [graph])
            if _has_utility_state(graph):
                result = init_activation_utility(result, [v.name for v in new])
        except GraphError as e:
            logger.debug("%sCould not insert a vertex after %s: %s", log_prefix(), name, e)
            return None
        checked = _checked(graph, result)
        if checked is None:
            logger.debug("%sCould not insert a vertex after %s: the graph would change shape", log_prefix(), name)
            return None
        report("AddVertexMutation", after=name, added=[v.name for v in new])
        return checked


def _new_vertices(out: Vertex, inp: Vertex) -> list[Vertex]:
    """The symbolic vertices between ``inp`` (excluded) and ``out``, in topological order."""
    order: list[Vertex] = []
    seen: set[int] = {id(inp)}
    stack: list[tuple[Vertex, bool]] = [(out, False)]
    while stack:
        v, expanded = stack.pop()
        if expanded:
            order.append(v)
            continue
        if id(v) in seen:
            continue
        seen.add(id(v))
        stack.append((v, True))
        stack.extend((i, False) for i in reversed(v.inputs) if id(i) not in seen)
    if any(not i.inputs and i is not inp for i in order):
        raise GraphError("AddVertexMutation: the space added an input vertex of its own")
    return order


@dataclasses.dataclass(frozen=True)
class RemoveVertexMutation(VertexLevel):
    """Removes each vertex; its inputs take its place (NaiveNASlib ``remove!`` with ``ConnectAll``).

    Sizes of the neighbours are aligned first (grow the smaller side, else shrink the bigger, else meet; neurons
    chosen by ``utility``). A removal that would create a size cycle logs "Size cycle detected!" and changes
    nothing; one whose sizes cannot be aligned logs a warning and changes nothing.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> v1 = ng.vertex("v1", ng.Dense(5), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("v2", ng.Dense(3), v1))
        >>> g2 = ng.VertexMutation(ng.RemoveVertexMutation(), selection=lambda g, m: ["v1"])(jax.random.key(1), g)
        >>> g2.inputs("v2"), g2.nin("v2")
        (('in',), (3,))
    """

    utility: Callable | None = None

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        for name in self._names(graph, names):
            try:
                new = remove_vertex(graph, name, utility=self.utility, key=vertex_key(key, name))
            except SizeChangeError as e:
                why = "Size cycle detected!" if "size cycle" in str(e) else "Could not align sizes of neighbours!"
                logger.warning("%sCan not remove vertex %s! %s", log_prefix(), name, why)
                continue
            except GraphError as e:
                logger.debug("%sCan not remove vertex %s! %s", log_prefix(), name, e)
                continue
            checked = _checked(graph, new)
            if checked is None:
                logger.debug("%sCan not remove vertex %s! The graph would change shape", log_prefix(), name)
                continue
            report("RemoveVertexMutation", removed=name)
            graph = checked
        return graph


@dataclasses.dataclass(frozen=True)
class MergeFun:
    """Chooses the merge op AddEdgeMutation inserts before a single-input target: a concat with probability
    ``pconc``, else an elementwise add (NaiveGAflux ``default_mergefun``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> type(ng.mutation.MergeFun(1.0)(jax.random.key(0))).__name__
        'Concat'
    """

    pconc: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "pconc", probability(self.pconc, "MergeFun(pconc=...)"))

    def __call__(self, key: jax.Array) -> Op:
        return Concat() if _draw.uniform(key, None, "merge") < self.pconc else Add()


def _merge_suffix(op: Op) -> str:
    return "cat" if isinstance(op, Concat) else "add"


@dataclasses.dataclass(frozen=True)
class AddEdgeMutation(VertexLevel):
    """Adds an edge from each vertex ``vi`` to a vertex after it whose inputs have ``vi``'s feature-map shapes.

    Candidates are ``ng.search.add_edge_candidates(graph, vi)`` (topological order, no cycles, no duplicates of existing
    outputs) that may be mutated (not shielded); each is taken with probability ``p`` in turn, so nearer ones are
    favoured (if none is taken, one at random). A single-input target gets a merge vertex before it
    (``mergefun(key)``: an add or a concat, shielded, named ``<input>.add``/``<input>.cat``); a single-input target
    whose input is multi-input and not an ancestor of ``vi`` takes the edge at that input. Sizes are aligned by
    ``ng.add_edge`` (neurons chosen by ``utility``); if that fails a warning is logged and nothing changes.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(4,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> d2 = ng.vertex("d2", ng.Dense(4), d1)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d3", ng.Dense(2), d2))
        >>> m = ng.AddEdgeMutation(1.0, mergefun=ng.mutation.MergeFun(1.0))
        >>> g2 = ng.VertexMutation(m, selection=lambda g, m: ["d1"])(jax.random.key(1), g)
        >>> g2.inputs("d3"), g2.inputs("d2.cat")
        (('d2.cat',), ('d2', 'd1'))
    """

    p: float = 0.5
    mergefun: Callable[[Any], Op] = MergeFun()
    utility: Callable | None = None

    def __post_init__(self):
        object.__setattr__(self, "p", probability(self.p, "AddEdgeMutation(p=...)"))
        if not callable(self.mergefun):
            raise TypeError(f"AddEdgeMutation: mergefun must be a function key -> op, got {self.mergefun!r}")

    def _target(self, key: jax.Array, graph: Graph, vi: str) -> str | None:
        candidates = [c for c in add_edge_candidates(graph, vi) if allow_mutation(graph, c, self)]
        if not candidates:
            return None
        draws = _draw.uniform(key, len(candidates) + 1, "edge", vi)
        for c, u in zip(candidates, draws):
            if u < self.p:
                return c
        return candidates[min(int(draws[-1] * len(candidates)), len(candidates) - 1)]

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        for vi in self._names(graph, names):
            k = vertex_key(key, vi)
            vo = self._target(k, graph, vi)
            if vo is not None:
                graph = self._add(k, graph, vi, vo)
        return graph

    def _add(self, key: jax.Array, graph: Graph, vi: str, vo: str) -> Graph:
        spec = graph.spec
        work, target = graph, vo
        if len(spec[vo].inputs) <= 1:
            voi = spec[vo].inputs[0]
            if len(spec[voi].inputs) <= 1 or voi == vi or voi in spec.ancestors(vi):
                op = self.mergefun(key)
                target = unique_name(spec, f"{voi}.{_merge_suffix(op)}")
                try:
                    work = insert_vertex(graph, after=voi, op=op, name=target, outputs=[vo], key=key)
                except GraphError as e:
                    logger.debug("%sCould not add a merge vertex before %s: %s", log_prefix(), vo, e)
                    return graph
                work = work.replace(spec=work.spec.replace_entries(shields={target: ()}))
            else:
                target = voi
        if vi in work.spec[target].inputs:
            return graph
        try:
            new = add_edge(work, vi, target, utility=self.utility, key=key)
        except (SizeChangeError, GraphError) as e:
            why = " Size cycle detected!" if "size cycle" in str(e) else ""
            logger.warning("%sCould not align sizes of %s and %s!%s", log_prefix(), vi, target, why)
            return graph
        checked = _checked(graph, new)
        if checked is None:
            logger.debug("%sCould not add an edge %s -> %s: the graph would change shape", log_prefix(), vi, target)
            return graph
        report("AddEdgeMutation", src=vi, dst=target, merge=target if target not in spec else None)
        return checked


@dataclasses.dataclass(frozen=True)
class RemoveEdgeMutation(VertexLevel):
    """Removes an edge from each vertex ``vi`` with at least two consumers to one of them that has several inputs.

    The consumer is drawn at random; one that reads ``vi`` more than once is left alone. From a concat the
    concat shrinks (neurons chosen by ``utility``); from an add nothing else changes.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> v1, v3 = ng.vertex("v1", ng.Dense(4), inp), ng.vertex("v3", ng.Dense(6), inp)
        >>> v2 = ng.vertex("v2", ng.Dense(5), v1)
        >>> v4 = ng.concat("v4", v1, v3)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=[v2, ng.vertex("o", ng.Dense(2), v4)])
        >>> g2 = ng.VertexMutation(ng.RemoveEdgeMutation(), selection=lambda g, m: ["v1"])(jax.random.key(1), g)
        >>> g2.inputs("v4"), g2.nin("o")
        (('v3',), (6,))
    """

    utility: Callable | None = None

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        for vi in self._names(graph, names):
            spec = graph.spec
            outs = spec.consumers(vi)
            candidates = [vo for vo in outs if len(spec[vo].inputs) > 1]
            if len(outs) < 2 or not candidates:
                continue
            k = vertex_key(key, vi)
            vo = candidates[min(int(_draw.uniform(k, None, "edge") * len(candidates)), len(candidates) - 1)]
            if spec[vo].inputs.count(vi) > 1:
                continue
            try:
                new = remove_edge(graph, vi, vo, utility=self.utility, key=k)
            except (SizeChangeError, GraphError) as e:
                logger.warning("%sCould not remove the edge %s -> %s: %s", log_prefix(), vi, vo, e)
                continue
            checked = _checked(graph, new)
            if checked is None:
                continue
            report("RemoveEdgeMutation", src=vi, dst=vo)
            graph = checked
        return graph
