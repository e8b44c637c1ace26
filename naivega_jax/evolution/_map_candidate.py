"""``MapCandidate``: new candidates by applying mutations (or crossovers) to the matching candidate fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax

from ..graph import Graph, GraphSpec, remap_opt_state
from ..mutation import TARGETS, mutation_leaves, record_events
from ._candidate import Candidate


def _target(m: object) -> str:
    target = getattr(m, "target", None)
    if target not in TARGETS:
        raise TypeError(
            f"MapCandidate: {m!r} has target {target!r}; every mutation or crossover must declare a `target` "
            f"(a ClassVar or property) naming the candidate field it changes, one of {TARGETS}"
        )
    return target


def _is_crossover(m: object) -> bool:
    return bool(getattr(m, "is_crossover", False))


def _op_changed(old: Any, new: Any) -> bool:
    """True if the ops differ in more than their number of outputs."""
    if old == new:
        return False
    try:
        return dataclasses.replace(old, nout=new.nout) != new
    except (TypeError, ValueError, AttributeError):
        return True


def graph_diff(old: GraphSpec, new: GraphSpec) -> dict[str, Any]:
    """A short JSON-friendly summary of how ``new`` differs from ``old`` (empty if equal).

    Keys (present only when non-empty): ``added`` and ``removed`` vertex names, ``resized`` (name ->
    ``[old nout, new nout]``), ``changed`` (op changed otherwise: kernel, activation, ...), ``rewired`` (inputs
    changed).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> spec = g.spec.replace_entries({"d": (ng.Dense(5, "relu"), ["in"])})
        >>> ng.evolution.graph_diff(g.spec, spec)
        {'resized': {'d': [3, 5]}, 'changed': ['d']}
    """
    if old == new:
        return {}
    before = {v.name: v for v in old.vertices}
    after = {v.name: v for v in new.vertices}
    common = [n for n in after if n in before]
    diff = {
        "added": [n for n in after if n not in before],
        "removed": [n for n in before if n not in after],
        "resized": {n: [before[n].nout, after[n].nout] for n in common if before[n].nout != after[n].nout},
        "changed": [n for n in common if _op_changed(before[n].op, after[n].op)],
        "rewired": [n for n in common if before[n].inputs != after[n].inputs],
    }
    return {k: v for k, v in diff.items() if v}


def candidate_diff(old: Candidate, new: Candidate) -> dict[str, Any]:
    """What changed between two candidates' graph specs, optimisers and batch sizes (JSON-friendly).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> c = ng.Candidate(ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp)))
        >>> ng.evolution.candidate_diff(c, c.replace(batch_size=64))
        {'batch_size': [32, 64]}
    """
    diff: dict[str, Any] = {}
    graph = graph_diff(old.graph.spec, new.graph.spec)
    if graph:
        diff["graph"] = graph
    if old.optimiser is not new.optimiser and old.optimiser != new.optimiser:
        diff["optimiser"] = [repr(old.optimiser), repr(new.optimiser)]
    if old.batch_size != new.batch_size:
        diff["batch_size"] = [old.batch_size, new.batch_size]
    return diff


def describe_mutation(m: Any, limit: int = 200) -> str:
    """A short, process-independent description of a mutation for the lineage.

    Its repr when that is short and holds no memory address; otherwise its type and its leaf mutations' types
    (the full repr of a default AutoFlux mutation is several kilobytes and names functions by address).

    Example:
        >>> import naivega_jax as ng
        >>> ng.evolution.describe_mutation(ng.LearningRateMutation())
        'LearningRateMutation()'
        >>> ng.evolution.describe_mutation(ng.MutationChain(ng.OptimiserCrossover(), ng.LearningRateCrossover()))
        'MutationChain(leaves: OptimiserCrossover, LearningRateCrossover)'
    """
    text = repr(m)
    if len(text) <= limit and " at 0x" not in text:
        return text
    leaves = dict.fromkeys(type(leaf).__name__ for leaf in mutation_leaves(m))
    return f"{type(m).__name__}(leaves: {', '.join(leaves)})"


def _carried_opt_state(parent: Candidate, fields: dict[str, Any]) -> Any:
    """The parent's optimiser state for the child: through the graph surgery, or None to start fresh."""
    state = parent.opt_state
    if state is None:
        return None
    optimiser = fields.get("optimiser", parent.optimiser)
    if type(optimiser) is not type(parent.optimiser):
        return None  # another kind of optimiser has a state of another shape
    graph = fields.get("graph", parent.graph)
    if graph is parent.graph:
        return state
    try:
        return remap_opt_state(parent.graph, graph, state)
    except ValueError:
        return None  # the graph came from elsewhere (a crossover's other parent): no record leads back


def _offspring(parent: Candidate, fields: dict[str, Any], event: str, what: list[str], events: tuple) -> Candidate:
    info = {} if parent.previous_fitness is None else {"parent_fitness": parent.previous_fitness}
    opt_state = _carried_opt_state(parent, fields)
    child = parent.replace(**fields, fitness=None, info=info, opt_state=opt_state)
    details = {"what": what, "changes": candidate_diff(parent, child)}
    if events:
        details["events"] = list(events)
    return child.with_event(event, **details)


@dataclasses.dataclass(frozen=True, init=False)
class MapCandidate:
    """Makes new candidates by applying each mutation to the candidate field it targets (NaiveGAflux).

    Each element declares ``target`` (a ClassVar or property): ``"graph"``, ``"optimiser"`` or ``"batch_size"``.
    Mutations are called ``m(key, value) -> value``. Crossovers declare ``is_crossover = True`` as well and are
    called ``c(key, (value1, value2)) -> (new1, new2)``; wrappers forward both attributes. Element ``i`` gets
    ``fold_in(key, i)``. As upstream: at most one element per target, and mutations and crossovers do not mix.

    Called with a candidate (mutations) it returns one new candidate; called with a pair ``(c1, c2)``
    (crossovers) it returns a pair. Untargeted fields are kept. A new candidate has ``fitness=None``, keeps its
    parent's last fitness in ``info["parent_fitness"]`` (for ``ng.EwmaFitness``) and its parent's generation, and
    its lineage gains one event: ``{"event": "mutation" | "crossover", "what": [describe_mutation(element)],
    "changes": candidate_diff(parent, child), "events": [...]}`` (``ng.evolution.describe_mutation``,
    ``ng.evolution.candidate_diff``), where ``events`` (present when not empty) are what the leaf mutations
    reported (``ng.mutation.record_events``; a crossover's events go to both children).

    Example:
        >>> import dataclasses, jax, naivega_jax as ng
        >>> from typing import ClassVar
        >>> @dataclasses.dataclass(frozen=True)
        ... class Double:
        ...     target: ClassVar[str] = "batch_size"
        ...     def __call__(self, key, batch_size):
        ...         return 2 * batch_size
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> c = ng.MapCandidate(Double())(jax.random.key(1), ng.Candidate(g, batch_size=16, fitness=0.5))
        >>> c.batch_size, c.fitness, c.info["parent_fitness"], c.lineage[-1]["changes"]
        (32, None, 0.5, {'batch_size': [16, 32]})
    """

    mutations: tuple[Any, ...]

    def __init__(self, *mutations: Any):
        if not mutations:
            raise ValueError("MapCandidate: give at least one mutation or crossover")
        seen: dict[str, Any] = {}
        for m in mutations:
            if not callable(m):
                raise TypeError(f"MapCandidate: every mutation must be callable as m(key, value), got {m!r}")
            target = _target(m)
            if target in seen:
                raise ValueError(
                    f"MapCandidate: {seen[target]!r} and {m!r} both target {target!r}; give one per field "
                    "(combine them with ng.MutationChain)"
                )
            seen[target] = m
        if len({_is_crossover(m) for m in mutations}) > 1:
            raise ValueError(
                f"MapCandidate: cannot mix mutations and crossovers in one MapCandidate, got {list(mutations)}"
            )
        object.__setattr__(self, "mutations", tuple(mutations))

    @property
    def is_crossover(self) -> bool:
        """True if this applies crossovers to pairs of candidates."""
        return _is_crossover(self.mutations[0])

    def __call__(self, key: jax.Array, candidates: Candidate | Sequence[Candidate]):
        if isinstance(candidates, Candidate):
            if self.is_crossover:
                raise TypeError("MapCandidate: these are crossovers; call it with a pair of candidates (c1, c2)")
            return self._mutate(key, candidates)
        if (
            isinstance(candidates, (tuple, list))
            and len(candidates) == 2
            and all(isinstance(c, Candidate) for c in candidates)
        ):
            if not self.is_crossover:
                raise TypeError("MapCandidate: these are mutations; call it with one candidate, not a pair")
            return self._cross(key, candidates)
        raise TypeError(f"MapCandidate: expected a Candidate or a pair of Candidates, got {type(candidates).__name__}")

    def _mutate(self, key: jax.Array, candidate: Candidate) -> Candidate:
        fields, events = record_events(self._mutated_fields, key, candidate)
        return _offspring(candidate, fields, "mutation", [describe_mutation(m) for m in self.mutations], events)

    def _mutated_fields(self, key: jax.Array, candidate: Candidate) -> dict[str, Any]:
        fields = {}
        for i, m in enumerate(self.mutations):
            fields[m.target] = _checked(m, m.target, m(jax.random.fold_in(key, i), getattr(candidate, m.target)))
        return fields

    def _cross(self, key: jax.Array, pair: Sequence[Candidate]) -> tuple[Candidate, Candidate]:
        a, b = pair
        (fields_a, fields_b), events = record_events(self._crossed_fields, key, a, b)
        what = [describe_mutation(c) for c in self.mutations]
        return _offspring(a, fields_a, "crossover", what, events), _offspring(b, fields_b, "crossover", what, events)

    def _crossed_fields(self, key: jax.Array, a: Candidate, b: Candidate) -> tuple[dict, dict]:
        fields_a, fields_b = {}, {}
        for i, c in enumerate(self.mutations):
            out = c(jax.random.fold_in(key, i), (getattr(a, c.target), getattr(b, c.target)))
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(f"MapCandidate: crossover {c!r} must return a pair, got {type(out).__name__}")
            fields_a[c.target] = _checked(c, c.target, out[0])
            fields_b[c.target] = _checked(c, c.target, out[1])
        return fields_a, fields_b


def _checked(m: Any, target: str, value: Any) -> Any:
    if target == "graph" and not isinstance(value, Graph):
        raise TypeError(f"MapCandidate: graph mutation {m!r} returned {type(value).__name__}, expected an ng.Graph")
    return value
