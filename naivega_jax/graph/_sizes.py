"""Size propagation: which vertices' neurons a size change ties together, and size cycles.

A vertex's output neurons are tied to other vertices' neurons by the size traits of the ops:

* an ``INVARIANT`` vertex (add, batch-norm, pools, ...) and a one-input concat have exactly their inputs' neurons,
  so they and their inputs share one selection vector: union-find merges them into a *group*;
* a multi-input ``STACK`` vertex (concat) has the concatenation of its inputs' neurons: its group is *defined* by
  the groups of its inputs (a concat definition);
* ``ABSORB`` vertices (Dense, Conv) start a new group: a change of their input is absorbed by their input weights;
* ``IMMUTABLE`` vertices (inputs, flatten) start a pinned group and pin the groups of their inputs.

A change to one group reaches exactly the groups connected to it through concat definitions (a *component*);
the absorbing consumers of those groups only have their input weights re-indexed. NaiveNASlib calls the vertices
of a component the participants of a size change (``all_in_Δsize_graph``).

A *size cycle* is a group whose concat definition contains the group itself (``nout(a) = nout(a) + nout(b)``): no
positive sizes satisfy it. Structural changes that would create one are refused.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence

from ._ops import IMMUTABLE, INVARIANT, STACK
from ._spec import GraphSpec

# Pseudo vertices used to pose structural changes as size problems (see _surgery): NEW stands for an edge being
# added to a concat (no existing neurons, a fixed number of new ones), DROP for an edge being removed from one
# (existing neurons that must all go).
NEW = "new"
DROP = "drop"


@dataclasses.dataclass(frozen=True)
class SizeNode:
    """One vertex of a size structure: its ``kind`` (a trait or NEW/DROP), inputs and current nout."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    nout: int
    fixed: int = 0  # NEW: how many new neurons it brings


@dataclasses.dataclass
class Group:
    """Vertices sharing one selection vector. ``defs``: each multi-input concat's input groups, in order."""

    gid: int
    members: list[str]
    n: int
    defs: list[tuple[int, ...]]
    pinned: bool = False
    pseudo: SizeNode | None = None


class SizeStructure:
    """Groups, concat definitions, pins and components of a (possibly virtual) graph structure."""

    def __init__(self, nodes: Sequence[SizeNode], pinned: Iterable[str] = ()):
        self.nodes = {node.name: node for node in nodes}
        parent = {name: name for name in self.nodes}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for node in nodes:
            if _tied(node):
                for i in node.inputs:
                    ra, rb = find(node.name), find(i)
                    if ra != rb:
                        parent[ra] = rb
        roots: dict[str, int] = {}
        self.groups: list[Group] = []
        self.group_of: dict[str, int] = {}
        for node in nodes:
            root = find(node.name)
            if root not in roots:
                roots[root] = len(self.groups)
                self.groups.append(Group(len(self.groups), [], node.nout, []))
            gid = roots[root]
            self.group_of[node.name] = gid
            group = self.groups[gid]
            group.members.append(node.name)
            if node.kind in (NEW, DROP):
                group.pseudo = node
        for node in nodes:
            group = self.groups[self.group_of[node.name]]
            if node.kind == STACK and len(node.inputs) > 1:
                group.defs.append(tuple(self.group_of[i] for i in node.inputs))
            if node.kind == IMMUTABLE:
                group.pinned = True
                for i in node.inputs:
                    self.groups[self.group_of[i]].pinned = True
        for name in pinned:
            self.groups[self.group_of[name]].pinned = True

    @classmethod
    def from_spec(cls, spec: GraphSpec, pin_outputs: bool = True) -> SizeStructure:
        """The structure of ``spec``; graph outputs are pinned (the output shape never changes) by default.

        Cached per spec (specs are immutable and hashable; nothing mutates a structure after construction).
        """
        return _from_spec(spec, pin_outputs)

    def components(self, gids: Iterable[int]) -> list[list[int]]:
        """The components (groups connected through concat definitions) containing ``gids``, each sorted."""
        adjacency = self._adjacency()
        seen: set[int] = set()
        out = []
        for start in gids:
            if start in seen:
                continue
            comp, stack = [], [start]
            seen.add(start)
            while stack:
                g = stack.pop()
                comp.append(g)
                for h in adjacency[g]:
                    if h not in seen:
                        seen.add(h)
                        stack.append(h)
            out.append(sorted(comp))
        return out

    def _adjacency(self) -> list[set[int]]:
        if not hasattr(self, "_adj"):
            adj: list[set[int]] = [set() for _ in self.groups]
            for g in self.groups:
                for d in g.defs:
                    for h in d:
                        adj[g.gid].add(h)
                        adj[h].add(g.gid)
            self._adj = adj
        return self._adj

    def pinned_closure(self) -> frozenset[int]:
        """Pinned groups and every group a pinned concat is made of (their selections are fixed too)."""
        if hasattr(self, "_pinned"):
            return self._pinned
        out: set[int] = set()
        stack = [g.gid for g in self.groups if g.pinned]
        while stack:
            g = stack.pop()
            if g in out:
                continue
            out.add(g)
            for d in self.groups[g].defs:
                stack.extend(d)
        self._pinned: frozenset[int] = frozenset(out)
        return self._pinned

    def find_cycle(self) -> list[str] | None:
        """The vertices of the tied groups along a size cycle, or None."""
        state = [0] * len(self.groups)  # 0 new, 1 on stack, 2 done
        path: list[int] = []

        def visit(g: int) -> list[int] | None:
            state[g] = 1
            path.append(g)
            for d in self.groups[g].defs:
                for h in d:
                    if state[h] == 1:
                        return [*path[path.index(h) :], h]
                    if state[h] == 0:
                        found = visit(h)
                        if found:
                            return found
            path.pop()
            state[g] = 2
            return None

        for g in range(len(self.groups)):
            if state[g] == 0:
                found = visit(g)
                if found:
                    return list(dict.fromkeys(m for h in found for m in self.groups[h].members))
        return None


@functools.lru_cache(maxsize=64)
def _from_spec(spec: GraphSpec, pin_outputs: bool) -> SizeStructure:
    return SizeStructure(nodes_of(spec), spec.outputs if pin_outputs else ())


def _tied(node: SizeNode) -> bool:
    return node.kind == INVARIANT or (node.kind == STACK and len(node.inputs) == 1)


def nodes_of(spec: GraphSpec) -> list[SizeNode]:
    return [SizeNode(v.name, v.op.trait, v.inputs, v.nout) for v in spec.vertices]


def structure_nodes(
    spec: GraphSpec, changes: Mapping[str, tuple[str, ...] | None], nouts: Mapping[str, int] | None = None
) -> list[SizeNode]:
    """The nodes of ``spec`` with some vertices' inputs changed (None removes a vertex), for cycle checks."""
    nouts = dict(nouts or {})
    out = []
    for v in spec.vertices:
        ins = changes.get(v.name, v.inputs)
        if ins is None:
            continue
        out.append(SizeNode(v.name, v.op.trait, tuple(ins), nouts.get(v.name, v.nout)))
    return out


def find_size_cycle(spec: GraphSpec) -> list[str] | None:
    """The vertices of the tied groups along a size cycle of ``spec``, or None if it has none.

    A valid graph never has one; use it on a prospective structure before rewiring (see ``remove_vertex``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d = ng.vertex("d", ng.Dense(3), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.add("a", d, inp))
        >>> ng.graph.find_size_cycle(g.spec) is None
        True
    """
    return SizeStructure.from_spec(spec).find_cycle()


def tied_vertices(graph_or_spec, name: str) -> tuple[str, ...]:
    """The vertices whose output neurons are the same as ``name``'s (one selection vector), topological order.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1, d2 = ng.vertex("d1", ng.Dense(4), inp), ng.vertex("d2", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("o", ng.Dense(2), ng.add("a", d1, d2)))
        >>> ng.graph.tied_vertices(g, "d1")
        ('d1', 'd2', 'a')
    """
    spec = getattr(graph_or_spec, "spec", graph_or_spec)
    spec.index(name)
    structure = SizeStructure.from_spec(spec)
    return tuple(structure.groups[structure.group_of[name]].members)


def size_participants(graph_or_spec, names: Iterable[str]) -> tuple[str, ...]:
    """Every vertex whose weights a change of the output size of ``names`` can touch, topological order.

    These are the vertices tied to ``names`` through add/invariant vertices and concatenations (whose neurons
    are selected), plus the absorbing vertices (Dense, Conv) that consume them (whose input weights follow).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> d2 = ng.vertex("d2", ng.Dense(5), d1)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d3", ng.Dense(2), d2))
        >>> ng.graph.size_participants(g, ["d1"])
        ('d1', 'd2')
    """
    spec = getattr(graph_or_spec, "spec", graph_or_spec)
    structure = SizeStructure.from_spec(spec)
    gids = [structure.group_of[spec[n].name] for n in names]
    touched: set[str] = set()
    for comp in structure.components(gids):
        for g in comp:
            for m in structure.groups[g].members:
                touched.add(m)
                touched.update(spec.consumers(m))
    return tuple(n for n in spec.names if n in touched)


def is_size_fixed(graph_or_spec, name: str) -> bool:
    """True when ``name``'s output size can never change: tied to an input, a flatten or a graph output.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> ng.graph.is_size_fixed(g, "d1"), ng.graph.is_size_fixed(g, "d2")
        (False, True)
    """
    spec = getattr(graph_or_spec, "spec", graph_or_spec)
    spec.index(name)
    structure = SizeStructure.from_spec(spec)
    return structure.group_of[name] in structure.pinned_closure()
