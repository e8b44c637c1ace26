"""The static part of a graph: vertices, ops, edges and shapes, as hashable tuples."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .._errors import GraphError
from ._ops import IMMUTABLE, Input, Op, Shape


@dataclasses.dataclass(frozen=True)
class VertexSpec:
    """One vertex: its unique ``name``, its ``op``, the names of its ``inputs`` (ordered) and its output ``shape``.

    ``shape`` is the feature shape without the batch axis; ``shape[-1]`` is the vertex's number of neurons (nout).
    ``shield`` is None for an ordinary vertex; for a shielded vertex it is the (possibly empty) tuple of mutation
    type names still allowed on it (NaiveGAflux's ``MutationShield``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> v = g.spec["d"]
        >>> v.inputs, v.shape, v.nout
        (('in',), (3,), 3)
    """

    name: str
    op: Op
    inputs: tuple[str, ...]
    shape: Shape
    shield: tuple[str, ...] | None = None

    @property
    def nout(self) -> int:
        return self.shape[-1]


@dataclasses.dataclass(frozen=True, eq=False)
class GraphSpec:
    """The static, hashable description of a graph; ``Graph`` keeps it in its pytree treedef.

    Attributes:
        vertices: every vertex in topological order, the graph inputs first (in their declared order), then a
            depth-first post-order from the outputs.
        inputs: names of the input vertices, in the order ``graph(x1, x2, ...)`` takes them.
        outputs: names of the output vertices, in the order the graph returns them.

    Two specs are equal iff their vertices, inputs and outputs are equal; equal specs share compiled functions.
    Build one with ``GraphSpec.create`` (which validates); never mutate one: surgery returns new specs.

    Example:
        >>> import naivega_jax as ng
        >>> spec = ng.GraphSpec.create([("in", ng.graph.Input((5,)), ()), ("d", ng.Dense(3), ("in",))], ["in"], ["d"])
        >>> spec.names, spec.nin("d"), spec.consumers("in")
        (('in', 'd'), (5,), ('d',))
    """

    vertices: tuple[VertexSpec, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    if TYPE_CHECKING:
        # Caches set in __post_init__ with object.__setattr__; not dataclass fields (equality, pickling and
        # dataclasses.fields see only the three above).
        _index: dict[str, int] = dataclasses.field(init=False)
        _hash: int = dataclasses.field(init=False)
        _consumers: dict[str, tuple[str, ...]] = dataclasses.field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "_index", {v.name: i for i, v in enumerate(self.vertices)})
        object.__setattr__(self, "_hash", hash((self.vertices, self.inputs, self.outputs)))
        consumers: dict[str, list[str]] = {v.name: [] for v in self.vertices}
        for v in self.vertices:
            for i in dict.fromkeys(v.inputs):
                consumers[i].append(v.name)
        object.__setattr__(self, "_consumers", {k: tuple(c) for k, c in consumers.items()})

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, GraphSpec) or self._hash != other._hash:
            return False
        return (self.vertices, self.inputs, self.outputs) == (other.vertices, other.inputs, other.outputs)

    def __getstate__(self):
        return {"vertices": self.vertices, "inputs": self.inputs, "outputs": self.outputs}

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)
        self.__post_init__()

    def __getitem__(self, name: str) -> VertexSpec:
        return self.vertices[self.index(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise GraphError(f"no vertex named {name!r}; the graph has {list(self._index)}") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.vertices)

    def consumers(self, name: str) -> tuple[str, ...]:
        """Names of the vertices that take ``name`` as an input (each once), in topological order."""
        self.index(name)
        return self._consumers[name]

    def ancestors(self, name: str) -> set[str]:
        """Every vertex ``name`` depends on (itself excluded)."""
        return self._reach(name, lambda n: self[n].inputs)

    def descendants(self, name: str) -> set[str]:
        """Every vertex that depends on ``name`` (itself excluded)."""
        return self._reach(name, self.consumers)

    def _reach(self, name: str, step) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for n in step(stack.pop()):
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        return seen

    def nout(self, name: str) -> int:
        return self[name].nout

    def nin(self, name: str) -> tuple[int, ...]:
        return tuple(self[i].nout for i in self[name].inputs)

    def input_shapes(self, name: str) -> tuple[Shape, ...]:
        return tuple(self[i].shape for i in self[name].inputs)

    @classmethod
    def create(
        cls,
        entries: Iterable[tuple[str, Op, Sequence[str]]],
        inputs: Sequence[str],
        outputs: Sequence[str],
        shields: Mapping[str, tuple[str, ...] | None] | None = None,
    ) -> GraphSpec:
        """Validates ``(name, op, input_names)`` entries and returns the spec with shapes and topological order.

        ``shields`` maps vertex names to their mutation shield (see ``VertexSpec``); unnamed vertices have none.

        Vertices that no output depends on are dropped. Raises ``GraphError`` (or ``ShapeError``) naming the
        vertex and the values for duplicate or unknown names, cycles, wrong arity, and sizes or shapes that
        disagree.
        """
        table: dict[str, tuple[Op, tuple[str, ...]]] = {}
        for name, op, ins in entries:
            if not isinstance(name, str) or not name:
                raise GraphError(f"vertex names must be non-empty strings, got {name!r}")
            if name in table:
                raise GraphError(f"duplicate vertex name {name!r}: every vertex needs a unique name")
            if not isinstance(op, Op):
                raise GraphError(f"vertex {name!r}: op must be an ng op (ng.Dense, ng.Conv, ...), got {op!r}")
            table[name] = (op, tuple(ins))
        inputs, outputs = tuple(inputs), tuple(outputs)
        if not inputs:
            raise GraphError("a graph needs at least one input vertex")
        if not outputs:
            raise GraphError("a graph needs at least one output vertex")
        for name in inputs:
            if name not in table or not isinstance(table[name][0], Input):
                raise GraphError(f"graph input {name!r} is not an input vertex (make it with ng.input_vertex)")
        for name in outputs:
            if name not in table:
                raise GraphError(f"graph output {name!r} is not a vertex of the graph; vertices: {list(table)}")
        if len(set(inputs)) != len(inputs) or len(set(outputs)) != len(outputs):
            raise GraphError(f"graph inputs and outputs must not repeat, got inputs={inputs} outputs={outputs}")

        order = list(inputs)
        done = set(inputs)
        visiting: list[str] = []
        for out in outputs:
            _visit(out, table, inputs, done, visiting, order)
        shields = dict(shields or {})
        shapes: dict[str, Shape] = {}
        vertices = []
        for name in order:
            op, ins = table[name]
            in_shapes = tuple(shapes[i] for i in ins)
            if len(ins) < op.min_inputs or (op.max_inputs is not None and len(ins) > op.max_inputs):
                expected = op.min_inputs if op.max_inputs == op.min_inputs else f"at least {op.min_inputs}"
                raise GraphError(
                    f"vertex {name!r}: {type(op).__name__} takes {expected} input(s), got {len(ins)}: {list(ins)}"
                )
            op = op.resolve(name, in_shapes)
            shape = tuple(int(s) for s in op.output_shape(name, in_shapes))
            shapes[name] = shape
            vertices.append(VertexSpec(name, op, ins, shape, _check_shield(name, shields.get(name))))
        return cls(tuple(vertices), inputs, outputs)

    def entries(self) -> list[tuple[str, Op, tuple[str, ...]]]:
        """The ``(name, op, inputs)`` entries ``create`` takes, for building changed specs."""
        return [(v.name, v.op, v.inputs) for v in self.vertices]

    def replace_entries(
        self,
        changes: Mapping[str, tuple[Op, Sequence[str]] | None] | None = None,
        *,
        outputs: Sequence[str] | None = None,
        shields: Mapping[str, tuple[str, ...] | None] | None = None,
    ) -> GraphSpec:
        """A new validated spec with the given vertices changed (``None`` removes one, new names are added).

        Kept vertices keep their shields unless ``shields`` names them; new vertices get ``shields.get(name)``.
        """
        changes = dict(changes or {})
        entries: list[tuple[str, Op, tuple[str, ...]]] = []
        for name, op, ins in self.entries():
            change = changes.pop(name, (op, ins))
            if change is not None:
                entries.append((name, change[0], tuple(change[1])))
        entries.extend((name, c[0], tuple(c[1])) for name, c in changes.items() if c is not None)
        merged: dict[str, tuple[str, ...] | None] = {v.name: v.shield for v in self.vertices if v.shield is not None}
        merged.update(shields or {})
        return GraphSpec.create(entries, self.inputs, self.outputs if outputs is None else outputs, merged)

    def shields(self) -> dict[str, tuple[str, ...]]:
        """The shields of every shielded vertex, for passing on to ``create``."""
        return {v.name: v.shield for v in self.vertices if v.shield is not None}

    def is_mutable(self, name: str) -> bool:
        """False for inputs and other immutable vertices (whose sizes never change)."""
        return self[name].op.trait != IMMUTABLE


def _check_shield(name: str, shield: object) -> tuple[str, ...] | None:
    if shield is None:
        return None
    if isinstance(shield, tuple) and all(isinstance(s, str) for s in shield):
        return shield
    raise GraphError(f"vertex {name!r}: shield must be None or a tuple of mutation type names, got {shield!r}")


def _visit(name, table, inputs, done, visiting, order):
    if name in done:
        return
    if name in visiting:
        cycle = [*visiting[visiting.index(name) :], name]
        raise GraphError(f"the graph has a cycle: {' -> '.join(cycle)}")
    if name not in table:
        raise GraphError(f"unknown vertex {name!r} used as an input of {visiting[-1]!r}")
    op, ins = table[name]
    if isinstance(op, Input):
        raise GraphError(
            f"input vertex {name!r} is used by {visiting[-1]!r} but is not among the graph inputs {list(inputs)}"
        )
    visiting.append(name)
    for i in ins:
        _visit(i, table, inputs, done, visiting, order)
    visiting.pop()
    done.add(name)
    order.append(name)
