"""Architecture spaces: each draws a piece of network on a symbolic input vertex and returns its last vertex.

Called as ``space(key, name, in_vertex, *, outsize=None, weight_init="default") -> ng.graph.Vertex``. Vertex names
follow
NaiveGAflux: ``name`` for a single vertex, ``name.1``, ``name.2``... for repeats and chains, ``name.path1``... and
``name.cat`` for forks, ``name.res``, ``name.add`` (and ``name.add.scale``) for residuals. ``outsize`` asks for the
number of output neurons of the returned vertex; ``weight_init`` (``"default"``, ``"identity"``, ``"zero"`` or
``ng.graph.PartialIdentityInit``) is propagated as NaiveGAflux does, so that ``outsize=nout(in)`` with ``"identity"``
gives layers whose linear part is the identity; the piece computes the identity where the drawn activations are the
identity on their inputs (see ``ng.AddVertexMutation``). Composite spaces call ``sample(rng, ...)`` with one host
generator.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .._errors import GraphError
from .._random import host_rng
from ..graph import Add, Concat, GlobalPool, Graph, Op, PartialIdentityInit, Scale, Vertex, build_graph, vertex
from ..graph.internal import check_weight_init, shield_names
from ._layerspace import AbstractLayerSpace, log_message, logger, nested_logging
from ._parspace import AbstractParSpace, draw_index, flat_choices, parspace_of
from ._protocols import ArchSpaceLike

Shape = tuple[int, ...]

# NaiveGAflux's names for the weight inits that ``weight_init=`` takes.
DefaultWeightInit = "default"
IdentityWeightInit = "identity"
ZeroWeightInit = "zero"
PartialIdentityWeightInit = PartialIdentityInit

_SHAPES: dict[int, tuple[Vertex, Shape]] = {}


def _known_shape(v: Vertex) -> Shape | None:
    hit = _SHAPES.get(id(v))
    return hit[1] if hit is not None and hit[0] is v else None


def vertex_shape(v: Vertex) -> Shape:
    """The feature shape (no batch axis) a symbolic vertex outputs; ``vertex_shape(v)[-1]`` is its nout.

    Uses the ops' own ``resolve``/``output_shape``, so it raises the same ``GraphError``/``ShapeError`` as
    ``ng.build_graph`` would, naming the vertex.

    Example:
        >>> import naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 8, 3))
        >>> ng.search.vertex_shape(ng.vertex("c", ng.Conv(4, 3, strides=2), inp))
        (4, 4, 4)
    """
    if not isinstance(v, Vertex):
        raise TypeError(f"vertex_shape: expected a vertex made by ng.vertex & co., got {v!r}")
    if len(_SHAPES) > 50_000:
        _SHAPES.clear()
    stack = [v]
    while stack:
        u = stack[-1]
        if _known_shape(u) is not None:
            stack.pop()
            continue
        missing = [i for i in u.inputs if _known_shape(i) is None]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        in_shapes = tuple(s for s in map(_known_shape, u.inputs) if s is not None)  # all known: none missing
        op = u.op
        if len(in_shapes) < op.min_inputs or (op.max_inputs is not None and len(in_shapes) > op.max_inputs):
            raise GraphError(f"vertex {u.name!r}: {type(op).__name__} cannot take {len(in_shapes)} input(s)")
        op = op.resolve(u.name, in_shapes)
        _SHAPES[id(u)] = (u, tuple(int(s) for s in op.output_shape(u.name, in_shapes)))
    return _SHAPES[id(v)][1]


def _nout(v: Vertex) -> int:
    return vertex_shape(v)[-1]


def _shield(shielded: Any, what: str) -> tuple[str, ...] | None:
    return shield_names(shielded, what)


class AbstractArchSpace:
    """Base class of architecture spaces: ``space(key, name, in_vertex, *, outsize=None, weight_init="default")``.

    Subclasses implement ``sample(rng, name, in_vertex, *, outsize=None, weight_init="default")`` where ``rng`` is a
    host generator (numpy's ``integers(n)``); ``__call__`` checks the arguments and seeds it from ``key``.

    Example:
        >>> import naivega_jax as ng
        >>> isinstance(ng.search.NoOpArchSpace(), ng.search.AbstractArchSpace)
        True
    """

    def sample(
        self, rng: Any, name: str, in_vertex: Vertex, *, outsize: int | None = None, weight_init: Any = "default"
    ) -> Vertex:
        raise NotImplementedError

    def __call__(
        self,
        key: jax.Array,
        name: str,
        in_vertex: Vertex,
        *,
        outsize: int | None = None,
        weight_init: Any = "default",
    ) -> Vertex:
        where = type(self).__name__
        if not isinstance(name, str):
            raise TypeError(f"{where}: name must be a str, got {name!r}")
        if not isinstance(in_vertex, Vertex):
            raise TypeError(f"{where}: in_vertex must be a vertex made by ng.input_vertex/ng.vertex, got {in_vertex!r}")
        if outsize is not None:
            if isinstance(outsize, bool) or not isinstance(outsize, (int, np.integer)) or outsize < 1:
                raise ValueError(f"{where}: outsize must be None or a positive int, got {outsize!r}")
            outsize = int(outsize)
        check_weight_init(weight_init, where)
        return self.sample(host_rng(key, "archspace"), name, in_vertex, outsize=outsize, weight_init=weight_init)


def _sample(space: ArchSpaceLike, rng: Any, name: str, v: Vertex, outsize: int | None, weight_init: Any) -> Vertex:
    if isinstance(space, AbstractArchSpace):
        return space.sample(rng, name, v, outsize=outsize, weight_init=weight_init)
    # A user-supplied callable space: give it a key of its own drawn from the stream.
    key = jax.random.key(int(rng.integers(2**31)))
    return space(key, name, v, outsize=outsize, weight_init=weight_init)


def _arch_space(x: Any, what: str) -> ArchSpaceLike:
    if isinstance(x, AbstractLayerSpace):
        return VertexSpace(x)
    if isinstance(x, AbstractArchSpace) or (callable(x) and not isinstance(x, (type, AbstractParSpace))):
        return x
    raise TypeError(f"{what}: expected an architecture space (ng.VertexSpace, ...) or a layer space, got {x!r}")


def _counts(x: Any, what: str) -> AbstractParSpace:
    space = parspace_of(x, what)
    if space.ndims != 1:
        raise ValueError(f"{what}: expected a 1-D space of counts, got {space!r}")
    for v in flat_choices(space) or ():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{what}: every count must be a non-negative int, got {v!r} in {space!r}")
    return space


@dataclasses.dataclass(frozen=True)
class VertexSpace(AbstractArchSpace):
    """One vertex whose op is drawn from ``layer_space`` for the input's feature shape.

    ``shielded``: False (mutable), True (shielded from every mutation) or a sequence of mutation types (classes or
    names) still allowed. The vertex is named ``name`` (``name.<suffix>`` under a ``NamedLayerSpace``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> v = ng.VertexSpace(ng.DenseSpace(3, "relu"))(jax.random.key(0), "v", inp)
        >>> v.name, ng.search.vertex_shape(v)
        ('v', (3,))
    """

    layer_space: AbstractLayerSpace
    shielded: Any = False

    def __post_init__(self):
        if not isinstance(self.layer_space, AbstractLayerSpace):
            raise TypeError(
                f"VertexSpace: layer_space must be a layer space (ng.DenseSpace, ...), got {self.layer_space!r}"
            )
        object.__setattr__(self, "shielded", _shield(self.shielded, "VertexSpace shielded"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        vname = ".".join(n for n in (name, self.layer_space.name) if n)
        op = self.layer_space.sample(rng, vertex_shape(in_vertex), outsize=outsize)
        v = vertex(vname, op, in_vertex, init=weight_init, shield=self.shielded)
        vertex_shape(v)
        return v


@dataclasses.dataclass(frozen=True)
class NoOpArchSpace(AbstractArchSpace):
    """Returns the input vertex unchanged.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(4,))
        >>> ng.search.NoOpArchSpace()(jax.random.key(0), "v", inp) is inp
        True
    """

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        return in_vertex


@dataclasses.dataclass(frozen=True, init=False)
class ArchSpace(AbstractArchSpace):
    """Draws from one of ``spaces``, chosen uniformly (layer spaces are wrapped in ``VertexSpace(s, shielded)``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.ArchSpace(ng.DenseSpace(3, "relu"), ng.BatchNormSpace("relu"))
        >>> v = space(jax.random.key(0), "v", ng.input_vertex("in", shape=(2,)))
        >>> type(v.op).__name__ in ("Dense", "BatchNorm")
        True
    """

    spaces: tuple[ArchSpaceLike, ...]

    def __init__(self, *spaces: ArchSpaceLike | AbstractLayerSpace, shielded: Any = False):
        if not spaces:
            raise ValueError("ArchSpace: expected at least one space, got none")
        wrapped = tuple(
            VertexSpace(s, shielded) if isinstance(s, AbstractLayerSpace) else _arch_space(s, "ArchSpace")
            for s in spaces
        )
        object.__setattr__(self, "spaces", wrapped)

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        space = self.spaces[0] if len(self.spaces) == 1 else self.spaces[draw_index(rng, len(self.spaces))]
        return _sample(space, rng, name, in_vertex, outsize, weight_init)


@dataclasses.dataclass(frozen=True)
class ConditionalArchSpace(AbstractArchSpace):
    """Uses ``iftrue`` when ``predicate(in_vertex)`` holds, else ``iffalse`` (default: no-op).

    The predicate gets the symbolic input vertex; ``ng.search.vertex_shape(v)`` gives its feature shape.

    Example:
        >>> import jax, naivega_jax as ng
        >>> wide = lambda v: ng.search.vertex_shape(v)[-1] > 2
        >>> space = ng.search.ConditionalArchSpace(wide, ng.DenseSpace(1, "relu"))
        >>> small = ng.input_vertex("in", shape=(2,))
        >>> space(jax.random.key(0), "v", small) is small
        True
    """

    predicate: Callable[[Vertex], bool]
    iftrue: Any
    iffalse: Any = NoOpArchSpace()

    def __post_init__(self):
        if not callable(self.predicate):
            raise TypeError(f"ConditionalArchSpace: predicate must be callable, got {self.predicate!r}")
        object.__setattr__(self, "iftrue", _arch_space(self.iftrue, "ConditionalArchSpace iftrue"))
        object.__setattr__(self, "iffalse", _arch_space(self.iffalse, "ConditionalArchSpace iffalse"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        space = self.iftrue if self.predicate(in_vertex) else self.iffalse
        return _sample(space, rng, name, in_vertex, outsize, weight_init)


def _chain_init(weight_init: Any, v: Vertex, outsize: int | None) -> Any:
    """A partial identity becomes a full identity once the input already has the requested size."""
    if isinstance(weight_init, PartialIdentityInit) and outsize is not None and _nout(v) == outsize:
        return "identity"
    return weight_init


@dataclasses.dataclass(frozen=True)
class RepeatArchSpace(AbstractArchSpace):
    """Draws a count ``n`` from ``counts`` and chains ``n`` samples of ``space``, named ``name.1`` .. ``name.n``.

    ``n == 0`` returns the input. ``outsize`` applies to every repetition.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.RepeatArchSpace(ng.VertexSpace(ng.BatchNormSpace("relu")), 3)
        >>> v = space(jax.random.key(0), "test", ng.input_vertex("in", shape=(3,)))
        >>> v.name, v.inputs[0].name
        ('test.3', 'test.2')
    """

    space: ArchSpaceLike
    counts: Any

    def __post_init__(self):
        object.__setattr__(self, "space", _arch_space(self.space, "RepeatArchSpace space"))
        object.__setattr__(self, "counts", _counts(self.counts, "RepeatArchSpace counts"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        v = in_vertex
        for i in range(1, int(self.counts.sample(rng)) + 1):
            v = _sample(self.space, rng, f"{name}.{i}", v, outsize, _chain_init(weight_init, v, outsize))
        return v


@dataclasses.dataclass(frozen=True, init=False)
class ArchSpaceChain(AbstractArchSpace):
    """Samples each space on the output of the previous one; names ``name.1``, ``name.2``, ...

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.ArchSpaceChain(ng.DenseSpace(2, "relu"), ng.DenseSpace(3, "relu"))
        >>> v = space(jax.random.key(0), "v", ng.input_vertex("in", shape=(3,)))
        >>> v.name, ng.search.vertex_shape(v)
        ('v.2', (3,))
    """

    spaces: tuple[ArchSpaceLike, ...]

    def __init__(self, *spaces: ArchSpaceLike | AbstractLayerSpace):
        if not spaces:
            raise ValueError("ArchSpaceChain: expected at least one space, got none")
        object.__setattr__(self, "spaces", tuple(_arch_space(s, "ArchSpaceChain") for s in spaces))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        v = in_vertex
        for i, space in enumerate(self.spaces, start=1):
            v = _sample(space, rng, f"{name}.{i}", v, outsize, _chain_init(weight_init, v, outsize))
        return v


def eq_split(total: int, n: int) -> list[int]:
    """Splits ``total`` into ``n`` near-equal parts, the larger ones last: ``eq_split(13, 3) == [4, 4, 5]``."""
    out, rem = [], total
    for i in range(n):
        part = rem // (n - i)
        out.append(part)
        rem -= part
    return out


def _fork_init(weight_init: Any, offset: int) -> Any:
    """The init of a fork path whose output starts at ``offset`` of the fork's output.

    NaiveGAflux turns an identity into ``PartialIdentityInit(offset, 0)``; a partial identity reaching a nested fork
    is shifted by the offset too (upstream passes it on unchanged, so nested forks are not an identity there).
    """
    if weight_init == "identity":
        return PartialIdentityInit(offset, 0)
    if isinstance(weight_init, PartialIdentityInit):
        return PartialIdentityInit(weight_init.in_offset + offset, weight_init.out_offset)
    return weight_init


@dataclasses.dataclass(frozen=True)
class ForkArchSpace(AbstractArchSpace):
    """Parallel paths from ``space`` on the same input, concatenated; the path count is drawn from ``paths``.

    With ``outsize``, the count is capped at ``outsize`` and the size is split evenly (13 into 3 paths: 4, 4, 5).
    Paths are named ``name.path1``..., the concat ``name.cat``; one path gives no concat, zero returns the input.
    An identity weight init becomes a partial identity per path, so the concatenation is an identity as a whole
    (nested forks too). ``shielded`` applies to the concat vertex.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.ForkArchSpace(ng.VertexSpace(ng.DenseSpace(3, "relu")), 3)
        >>> v = space(jax.random.key(0), "v", ng.input_vertex("in", shape=(3,)), outsize=13)
        >>> v.name, [ng.search.vertex_shape(p)[-1] for p in v.inputs]
        ('v.cat', [4, 4, 5])
    """

    space: ArchSpaceLike
    paths: Any
    shielded: Any = False

    def __post_init__(self):
        object.__setattr__(self, "space", _arch_space(self.space, "ForkArchSpace space"))
        object.__setattr__(self, "paths", _counts(self.paths, "ForkArchSpace paths"))
        object.__setattr__(self, "shielded", _shield(self.shielded, "ForkArchSpace shielded"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        npaths = int(self.paths.sample(rng))
        if outsize is not None:
            npaths = min(npaths, outsize)
        if npaths == 0:
            return in_vertex
        sizes = [None] * npaths if outsize is None else eq_split(outsize, npaths)
        identity = weight_init == "identity" or isinstance(weight_init, PartialIdentityInit)
        if identity and outsize is None and npaths > 1:
            raise ValueError(f"ForkArchSpace {name!r}: an identity weight init over several paths needs outsize")
        branches = []
        for i, size in enumerate(sizes):
            init = _fork_init(weight_init, sum(sizes[:i])) if identity else weight_init
            branches.append(_sample(self.space, rng, f"{name}.path{i + 1}", in_vertex, size, init))
        if len(branches) == 1:
            return branches[0]
        v = vertex(f"{name}.cat", Concat(), *branches, shield=self.shielded)
        vertex_shape(v)
        return v


@dataclasses.dataclass(frozen=True)
class ResidualArchSpace(AbstractArchSpace):
    """``in + space(in)``: the residual path ``name.res`` gets ``outsize=nout(in)``, the sum is ``name.add``.

    Under an identity (or partial identity) init a ``Scale(0.5)`` vertex ``name.add.scale`` follows the sum, so the
    block computes ``x`` again; a ``"zero"`` init makes the residual path output zeros instead. ``shielded``
    applies to the add (and scale) vertex.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.ResidualArchSpace(ng.DenseSpace(3, "relu"))
        >>> v = space(jax.random.key(0), "v", ng.input_vertex("in", shape=(4,)))
        >>> v.name, [i.name for i in v.inputs]
        ('v.add', ['in', 'v.res'])
    """

    space: ArchSpaceLike
    shielded: Any = False

    def __post_init__(self):
        object.__setattr__(self, "space", _arch_space(self.space, "ResidualArchSpace space"))
        object.__setattr__(self, "shielded", _shield(self.shielded, "ResidualArchSpace shielded"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        res = _sample(self.space, rng, f"{name}.res", in_vertex, _nout(in_vertex), weight_init)
        v = vertex(f"{name}.add", Add(), in_vertex, res, shield=self.shielded)
        vertex_shape(v)
        if weight_init == "identity" or isinstance(weight_init, PartialIdentityInit):
            v = vertex(f"{name}.add.scale", Scale(0.5), v, shield=self.shielded)
        return v


@dataclasses.dataclass(frozen=True, init=False)
class FunctionSpace(AbstractArchSpace):
    """A vertex applying one of ``ops`` (chosen uniformly, e.g. ``ng.GlobalPool("max")``), named
    ``name + name_suffix``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.FunctionSpace(ng.Scale(2.0), name_suffix=".fun")
        >>> space(jax.random.key(0), "v", ng.input_vertex("in", shape=(3,))).name
        'v.fun'
    """

    ops: tuple[Op, ...]
    name_suffix: str
    shielded: Any

    def __init__(self, *ops: Op, name_suffix: str = ".fun", shielded: Any = False):
        if not ops:
            raise ValueError("FunctionSpace: expected at least one op, got none")
        for op in ops:
            if not isinstance(op, Op):
                raise TypeError(f"FunctionSpace: every choice must be an ng op (ng.GlobalPool, ...), got {op!r}")
        if not isinstance(name_suffix, str):
            raise TypeError(f"FunctionSpace: name_suffix must be a str, got {name_suffix!r}")
        object.__setattr__(self, "ops", tuple(ops))
        object.__setattr__(self, "name_suffix", name_suffix)
        object.__setattr__(self, "shielded", _shield(shielded, "FunctionSpace shielded"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        op = self.ops[draw_index(rng, len(self.ops))]
        v = vertex(name + self.name_suffix, op, in_vertex, shield=self.shielded)
        vertex_shape(v)
        return v


def GlobalPoolSpace(kinds: str | Sequence[str] = ("max", "mean"), *, shielded: Any = True) -> FunctionSpace:
    """A ``FunctionSpace`` over ``ng.GlobalPool`` of the given kinds, suffix ``.globpool``, shielded by default.

    Example:
        >>> import jax, naivega_jax as ng
        >>> v = ng.GlobalPoolSpace()(jax.random.key(0), "v", ng.input_vertex("in", shape=(4, 5, 3)))
        >>> v.name, ng.search.vertex_shape(v), v.shield
        ('v.globpool', (3,), ())
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return FunctionSpace(*(GlobalPool(k) for k in kinds), name_suffix=".globpool", shielded=shielded)


@dataclasses.dataclass(frozen=True)
class LoggingArchSpace(AbstractArchSpace):
    """Logs ``msgfun(vertex)`` (default ``"Created <name>"``) at ``level`` on the ``naivega_jax.search`` logger
    after sampling ``space``; messages logged while sampling it are indented one step.

    Example:
        >>> import jax, naivega_jax as ng
        >>> space = ng.search.LoggingArchSpace(ng.VertexSpace(ng.DenseSpace(3, "identity")))
        >>> space(jax.random.key(0), "test", ng.input_vertex("in", shape=(2,))).name
        'test'
    """

    space: ArchSpaceLike
    msgfun: Callable[[Vertex], str] | None = None
    level: int = logging.DEBUG

    def __post_init__(self):
        object.__setattr__(self, "space", _arch_space(self.space, "LoggingArchSpace space"))

    def sample(self, rng, name, in_vertex, *, outsize=None, weight_init="default"):
        with nested_logging():
            v = _sample(self.space, rng, name, in_vertex, outsize, weight_init)
        if logger.isEnabledFor(self.level):
            log_message(self.level, self.msgfun(v) if self.msgfun is not None else f"Created {v.name}")
        return v


def sample_graph(
    key: jax.Array, space: ArchSpaceLike | AbstractLayerSpace, input_vertex: Vertex, *, name: str = "model"
) -> Graph:
    """Samples ``space`` on ``input_vertex`` (vertices named under ``name``) and builds the graph.

    The architecture and the parameters are drawn from independent halves of ``key``.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> layer = ng.VertexSpace(ng.DenseSpace(range(3, 11), ["identity", "relu"]))
        >>> out = ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True)
        >>> space = ng.ArchSpaceChain(ng.RepeatArchSpace(layer, range(1, 4)), out)
        >>> graph = ng.sample_graph(jax.random.key(0), space, ng.input_vertex("in", shape=(5,)))
        >>> graph(jnp.ones((2, 5))).shape
        (2, 3)
    """
    space = _arch_space(space, "sample_graph space")
    arch_key, param_key = jax.random.split(key)
    out = space(arch_key, name, input_vertex, outsize=None, weight_init="default")
    return build_graph(param_key, inputs=input_vertex, outputs=out)
