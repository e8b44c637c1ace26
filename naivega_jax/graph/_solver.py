"""The neuron-selection problem: which neurons each vertex keeps, and where new ones go.

Formulation (NaiveNASlib's ``Δsize!`` with ``NeuronIndices``, engineered to stay cheap):

* Only the components a change reaches are solved (``_sizes``); each tied group is ONE selection vector.
* A group without a concat definition is a *base*: a keep/drop binary ``s`` per existing neuron and an integer count
  ``k`` of new neurons at its end (and, only where two concatenations of one group disagree on a boundary, at
  that interior gap). A concat-defined group's vector is the concatenation of its inputs' vectors, so it needs no
  variables; a second definition of the same group adds equality rows.
* Objective (maximised): total utility of kept neurons, minus a size penalty ``0.1 L1 + 0.8 Linf`` over groups of
  ``max|u| (N - T) / T`` with ``T = max(1, n - #negative)`` (so neurons of negative utility are dropped), minus a
  small cost per new neuron that grows with its distance from the end (new neurons are appended). An exact target
  is an equality; a relaxed target is a heavily weighted soft target plus a must-change constraint.
* A component that is a single base group with no constraint besides its target is solved in closed form (top
  neurons by utility, new ones appended); the MILP (``scipy.optimize.milp``, HiGHS) is kept for concatenations.

A selection is an index array per vertex: kept neuron indices in their original order, ``-1`` for a new neuron.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import scipy.optimize
import scipy.sparse

from .._errors import SizeChangeError
from ._sizes import DROP, NEW, SizeStructure

DEFAULT_TIME_LIMIT = 20.0
_RELAXED_WEIGHT = 10.0


class _Infeasible(Exception):
    pass


def join_selection(kept, inserts) -> np.ndarray:
    """The selection for keep flags per existing neuron and counts of new neurons per gap.

    ``inserts[j]`` new neurons go just before existing neuron ``j``; ``inserts[n]`` at the end.
    """
    n = len(kept)
    if len(inserts) != n + 1:
        raise ValueError(f"inserts needs {n + 1} gap counts for {n} neurons, got {len(inserts)}")
    sel: list[int] = []
    for j in range(n + 1):
        sel.extend([-1] * int(inserts[j]))
        if j < n and kept[j]:
            sel.append(j)
    return np.asarray(sel, np.int64)


@dataclasses.dataclass
class SizeRequest:
    """Targets in absolute sizes, keyed by vertex name (several names of one group must agree)."""

    exact: Mapping[str, int] = dataclasses.field(default_factory=dict)
    relaxed: Mapping[str, int] = dataclasses.field(default_factory=dict)  # tied names may differ: a compromise
    equal: Iterable[tuple[str, str]] = ()
    touch: Iterable[str] = ()
    prune_all: bool = False
    no_insert: bool = False


@dataclasses.dataclass
class SolveStats:
    """What one size solve did: the components it solved, how many of them went to the MILP (the rest were solved
    in closed form), the MILP's variables, and the seconds the solve took (utility computation included).

    The solver makes one per call and hands it over with the selection (``NeuronSelection.stats``); nothing else
    holds it, so concurrent solves (a background compile thread, executors running candidates side by side) each
    see their own.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(5), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> stats = ng.graph.neuron_selection(g, {"d1": -2}).stats
        >>> stats.components, stats.milp, stats.variables
        (1, 0, 0)
    """

    components: int = 0
    milp: int = 0
    variables: int = 0
    seconds: float = 0.0


class NeuronSelection(dict):
    """The neurons every solved vertex keeps (``{name: indices}``, ``-1`` for a new neuron), and ``stats``, the
    ``SolveStats`` of the solve that chose them.

    A plain ``dict`` otherwise: ``ng.graph.apply_selection`` takes it as it is, and copies or ``{**selection}`` drop the
    stats with no other change.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(5), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> sel = ng.graph.neuron_selection(g, {"d1": +1})
        >>> sel["d1"].tolist(), sel.stats.milp
        ([0, 1, 2, 3, 4, -1], 0)
    """

    stats: SolveStats

    def __init__(self, selections: Mapping[str, np.ndarray] | None = None, stats: SolveStats | None = None):
        super().__init__(selections or {})
        self.stats = SolveStats() if stats is None else stats

    def __repr__(self) -> str:
        return f"NeuronSelection({dict.__repr__(self)}, stats={self.stats!r})"


def solve_selection(
    structure: SizeStructure,
    request: SizeRequest,
    utility_of: Callable[[str], np.ndarray],
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> NeuronSelection:
    """Selections for every real vertex of every solved component (identity ones included), with the solve's
    ``SolveStats`` (``.stats``).

    Raises ``_Infeasible`` (caught by callers) when a component has no solution.
    """
    t0 = time.perf_counter()
    stats = SolveStats()
    g_exact = _targets(structure, request.exact, "exact")
    g_relaxed: dict[int, list[int]] = {}
    for name, n in request.relaxed.items():
        g_relaxed.setdefault(structure.group_of[name], []).append(int(n))
    if any(n < 1 for n in g_exact.values()):
        raise _Infeasible("a vertex needs at least one neuron")
    equal = [(structure.group_of[a], structure.group_of[b]) for a, b in request.equal]
    if request.prune_all:
        starts: list[int] = [g.gid for g in structure.groups]
    else:
        starts = [*g_exact, *g_relaxed, *(g for pair in equal for g in pair)]
        starts += [structure.group_of[name] for name in request.touch]
    comps = _merge_equal(structure.components(starts), equal)
    pinned = structure.pinned_closure()
    cache: dict[int, np.ndarray] = {}

    def group_utility(gid: int) -> np.ndarray:
        if gid not in cache:
            group = structure.groups[gid]
            total = np.zeros(group.n, np.float64)
            for m in group.members:
                if structure.nodes[m].kind in (NEW, DROP):
                    continue
                total += _safe_utility(utility_of(m), m, group.n)
            cache[gid] = total
        return cache[gid]

    problem = _Problem(structure, g_exact, g_relaxed, equal, pinned, request.no_insert, group_utility)
    out: dict[str, np.ndarray] = {}
    sels: dict[int, np.ndarray] = {}
    coupled = []
    for comp in comps:
        stats.components += 1
        if problem.closed_form_applies(comp):
            sels.update(problem.closed_form(structure.groups[comp[0]]))
        else:
            coupled.append(comp)
    if coupled:
        # One HiGHS call for every coupled component (block-diagonal): its fixed cost dominates small problems.
        stats.milp += len(coupled)
        sels.update(_solve_coupled(problem, coupled, bool(g_relaxed), time_limit, stats))
    for comp in comps:
        for gid in comp:
            group = structure.groups[gid]
            sel = sels.get(gid)
            if sel is None:
                sel = np.arange(group.n)
            for m in group.members:
                if structure.nodes[m].kind not in (NEW, DROP):
                    out[m] = sel
    stats.seconds = time.perf_counter() - t0
    return NeuronSelection(out, stats)


def _solve_coupled(problem, coupled, relaxed: bool, time_limit: float, stats: SolveStats) -> dict[int, np.ndarray]:
    def attempt(directional: bool) -> dict[int, np.ndarray]:
        return _Milp(problem, coupled, directional).run(time_limit, stats)

    try:
        return attempt(True)
    except _Infeasible:
        if not relaxed:
            raise
        # A relaxed change that cannot go towards its target may still go the other way (must change).
        return attempt(False)


def _targets(structure: SizeStructure, targets: Mapping[str, int], what: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for name, n in targets.items():
        gid = structure.group_of[name]
        if gid in out and out[gid] != n:
            raise SizeChangeError(
                f"{what} size targets disagree for tied vertices: {name!r} -> {n} but its group "
                f"{structure.groups[gid].members} already has target {out[gid]} (tied vertices share one size)"
            )
        out[gid] = int(n)
    return out


def _merge_equal(comps: list[list[int]], equal: list[tuple[int, int]]) -> list[list[int]]:
    where = {g: i for i, comp in enumerate(comps) for g in comp}
    parent = list(range(len(comps)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in equal:
        ra, rb = find(where[a]), find(where[b])
        if ra != rb:
            parent[ra] = rb
    merged: dict[int, list[int]] = {}
    for i, comp in enumerate(comps):
        merged.setdefault(find(i), []).extend(comp)
    return [sorted(c) for c in merged.values()]


def _safe_utility(values, name: str, n: int) -> np.ndarray:
    u = np.asarray(values, np.float64)
    if u.ndim == 0:
        u = np.full(n, float(u))
    if u.shape != (n,):
        raise ValueError(f"utility of vertex {name!r} must be a 1-D array of length nout={n}, got shape {u.shape}")
    return np.where(np.isfinite(u), u, -100.0)


class _Problem:
    def __init__(self, structure, exact, relaxed, equal, pinned, no_insert, group_utility):
        self.st = structure
        self.exact, self.relaxed, self.equal = exact, relaxed, equal
        self.pinned, self.no_insert, self.group_utility = pinned, no_insert, group_utility

    def closed_form_applies(self, comp: list[int]) -> bool:
        group = self.st.groups[comp[0]]
        single = len(comp) == 1 and not group.defs and group.pseudo is None
        return single and len(self.relaxed.get(comp[0], ())) <= 1 and not any(comp[0] in p for p in self.equal)

    def closed_form(self, group) -> dict[int, np.ndarray]:
        gid, n = group.gid, group.n
        exact, relaxed = self.exact.get(gid), self.relaxed.get(gid, [None])[0]
        if gid in self.pinned:
            if (exact is not None and exact != n) or (relaxed is not None and relaxed != n):
                raise _Infeasible(f"{group.members} has a fixed size")
            return {}
        u = self.group_utility(gid)
        if exact is None and relaxed is None:
            keep = np.flatnonzero(u >= 0)
            if keep.size == 0:
                keep = np.array([int(np.argmax(u))])
            return {gid: keep}
        if exact is not None:
            target = exact
        elif relaxed == n:
            target = n
        else:
            target = max(relaxed, 1)
            if target == n:
                target = n + 1 if n == 1 else n - 1
        if target < 1 or (self.no_insert and target > n):
            raise _Infeasible(f"{group.members} cannot have size {target}")
        order = np.argsort(-u, kind="stable")
        keep = np.sort(order[u[order] >= 0][:target])
        return {gid: np.concatenate([keep, -np.ones(target - keep.size, keep.dtype)])}


class _Milp:
    """One component as a mixed-integer program (see the module docstring)."""

    def __init__(self, problem: _Problem, comps: list[list[int]], directional: bool = True):
        self.directional = directional
        comp = [g for c in comps for g in c]
        self.p, self.comp, self.comps = problem, comp, comps
        st = problem.st
        self.groups = {g: st.groups[g] for g in comp}
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.cost: list[float] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []
        # Utilities are scaled per component so that the largest is 1 (a uniform scale changes no argmax).
        self.coefs: dict[int, np.ndarray] = {}
        self.min_u: dict[int, float] = {}
        for c in comps:
            coefs = {g: problem.group_utility(g) for g in c if self.groups[g].pseudo is None}
            scale = max([float(np.max(np.abs(u))) for u in coefs.values() if u.size] + [0.0]) or 1.0
            nz = [np.min(np.abs(u[u != 0])) for u in coefs.values() if np.any(u != 0)]
            for g in c:
                self.min_u[g] = max(min(nz) / scale if nz else 1.0, 1e-3)
            self.coefs.update({g: u / scale for g, u in coefs.items()})
        max_n = max(g.n for g in self.groups.values())
        targets = [(g, t) for g, t in problem.exact.items()] + [(g, t) for g, ts in problem.relaxed.items() for t in ts]
        dmax = max([abs(t - st.groups[g].n) for g, t in targets] + [0])
        self.kmax = max(200, 10 * max_n) + dmax
        for g in comp:
            if self.groups[g].pseudo is not None and g in problem.pinned:
                raise _Infeasible(f"an edge of the fixed-size vertices {self.groups[g].members} cannot change")
        self.s: dict[int, list[int]] = {}
        self.gaps: dict[int, dict[int, int]] = {}
        self.owner: dict[int, tuple[int, int]] = {}
        for g in comp:
            if not self.groups[g].defs:
                self._add_base(self.groups[g])

    def var(self, lb: float, ub: float, integer: bool, cost: float = 0.0) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.integer.append(1 if integer else 0)
        self.cost.append(cost)
        return len(self.lb) - 1

    def _add_base(self, group) -> None:
        fixed = group.gid in self.p.pinned
        drop = group.pseudo is not None and group.pseudo.kind == DROP
        lb, ub = (1, 1) if fixed else (0, 0) if drop else (0, 1)
        self.s[group.gid] = []
        for i in range(group.n):
            v = self.var(lb, ub, True)
            self.s[group.gid].append(v)
            self.owner[v] = (group.gid, i)
        self.gaps[group.gid] = {}
        self._add_gap(group.gid, group.n)

    def _add_gap(self, gid: int, pos: int) -> None:
        group = self.groups[gid]
        if group.pseudo is not None and group.pseudo.kind == NEW:
            lb = ub = group.pseudo.fixed
        elif gid in self.p.pinned or group.pseudo is not None or self.p.no_insert:
            lb = ub = 0
        else:
            lb, ub = 0, self.kmax
        # New neurons cost a little, more the further from the end: they are appended unless needed elsewhere.
        weight = 0.1 * self.min_u[gid] * (group.n + 1 - pos) / (group.n + 1)
        self.gaps[gid][pos] = self.var(lb, ub, True, weight)

    def vector(self, gid: int, memo: dict) -> tuple[list[int], list[list[int]]]:
        if gid in memo:
            return memo[gid]
        group = self.p.st.groups[gid]
        if group.defs:
            result = self._concat(group.defs[0], memo)
        else:
            gaps = self.gaps[gid]
            result = (self.s[gid], [[gaps[p]] if p in gaps else [] for p in range(group.n + 1)])
        memo[gid] = result
        return result

    def _concat(self, parts: tuple[int, ...], memo: dict):
        entries: list[int] = []
        gaps: list[list[int]] = [[]]
        for h in parts:
            e, gp = self.vector(h, memo)
            entries = entries + e
            gaps = [*gaps[:-1], gaps[-1] + gp[0], *gp[1:]]
        return entries, gaps

    def _open_gaps(self) -> dict:
        """Adds interior gap variables where two definitions of one group disagree on boundaries."""
        while True:
            memo: dict = {}
            added = False
            for g in self.comp:
                defs = self.groups[g].defs
                if len(defs) < 2:
                    continue
                vecs = [self._concat(d, memo) for d in defs]
                for j in range(self.groups[g].n + 1):
                    if not any(v[1][j] for v in vecs):
                        continue
                    for entries, gaps in vecs:
                        if gaps[j]:
                            continue
                        base, pos = self.owner[entries[j]] if j == 0 else self.owner[entries[j - 1]]
                        pos = pos if j == 0 else pos + 1
                        if pos not in self.gaps[base]:
                            self._add_gap(base, pos)
                            added = True
                if added:
                    break
            if not added:
                return memo

    def row(self, terms: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append((terms, lo, hi))

    def run(self, time_limit: float, stats: SolveStats) -> dict[int, np.ndarray]:
        memo = self._open_gaps()
        vecs = {g: self.vector(g, memo) for g in self.comp}
        for g in self.comp:
            group = self.groups[g]
            entries, gaps = vecs[g]
            if group.defs and g in self.p.pinned:
                for v in entries:
                    self.lb[v] = 1
                for gp in gaps:
                    for v in gp:
                        self.ub[v] = 0
            for d in group.defs[1:]:
                e2, g2 = self._concat(d, memo)
                for a, b in zip(entries, e2):
                    if a != b:
                        self.row({a: 1.0, b: -1.0}, 0, 0)
                for ga, gb in zip(gaps, g2):
                    if sorted(ga) != sorted(gb):
                        terms: dict[int, float] = {}
                        for v in ga:
                            terms[v] = terms.get(v, 0.0) + 1.0
                        for v in gb:
                            terms[v] = terms.get(v, 0.0) - 1.0
                        self.row(terms, 0, 0)
            if group.pseudo is None:
                for v, c in zip(entries, self.coefs[g]):
                    self.cost[v] -= c
        self._size_rows(vecs)
        return self._solve(vecs, time_limit, stats)

    def _size_expr(self, vec) -> dict[int, float]:
        terms: dict[int, float] = {}
        for v in vec[0]:
            terms[v] = terms.get(v, 0.0) + 1.0
        for gp in vec[1]:
            for v in gp:
                terms[v] = terms.get(v, 0.0) + 1.0
        return terms

    def _size_rows(self, vecs) -> None:
        for comp in self.comps:
            self._component_size_rows(comp, vecs)
        for a, b in self.p.equal:
            if a in self.groups and b in self.groups and a != b:
                terms = self._size_expr(vecs[a])
                for v, c in self._size_expr(vecs[b]).items():
                    terms[v] = terms.get(v, 0.0) - c
                self.row(terms, 0, 0)

    def _component_size_rows(self, comp: list[int], vecs) -> None:
        p = self.p
        zmax = None
        coefs = [self.coefs[g] for g in comp if g in self.coefs]
        relax_weight = _RELAXED_WEIGHT * (1.0 + sum(float(np.sum(np.abs(c))) for c in coefs))
        relax_weight += sum(self.groups[g].n for g in comp)
        for g in comp:
            group = self.groups[g]
            if group.pseudo is not None:
                continue
            size = self._size_expr(vecs[g])
            n = group.n
            if g in p.exact:
                self.row(size, p.exact[g], p.exact[g])
                continue
            self.row(size, 1, math.inf)
            if g in p.relaxed:
                # Several relaxed targets on one tied group (deltas asked of tied vertices): a compromise.
                for target in p.relaxed[g]:
                    self._deviation(size, target, relax_weight)
                above, below = any(t > n for t in p.relaxed[g]), any(t < n for t in p.relaxed[g])
                if self.directional and above != below:
                    # Towards the target: a plain bound keeps the LP relaxation tight (no big-M binary).
                    self.row(size, n + 1, math.inf) if above else self.row(size, -math.inf, n - 1)
                elif above or below:
                    big = n + self.kmax * len(size) + 2
                    b = self.var(0, 1, True)
                    # b = 1: grow (N >= n + 1); b = 0: shrink (N <= n - 1).
                    self.row({**size, b: -big}, n + 1 - big, math.inf)
                    self.row({**size, b: -big}, -math.inf, n - 1)
                continue
            if g in p.pinned:
                continue
            u = self.coefs[g]
            target = max(1, n - int(np.sum(u < 0)) + self._structural_delta(g))
            c = float(np.max(np.abs(u))) / target if u.size else 0.0
            if c <= 0:
                continue
            dp, dm = self._deviation(size, target, 0.1 * c)
            if zmax is None:
                zmax = self.var(0, math.inf, False, 0.8)
            self.row({zmax: 1.0, dp: -c, dm: -c}, 0, math.inf)

    def _structural_delta(self, gid: int) -> int:
        """How much a group grows through edges being added (NEW) or removed (DROP) in its definition."""
        group = self.p.st.groups[gid]
        if group.pseudo is not None:
            return group.pseudo.fixed if group.pseudo.kind == NEW else -group.n
        return sum(self._structural_delta(h) for h in group.defs[0]) if group.defs else 0

    def _deviation(self, size: dict[int, float], target: int, weight: float) -> tuple[int, int]:
        dp = self.var(0, math.inf, False, weight)
        dm = self.var(0, math.inf, False, weight)
        self.row({**size, dp: -1.0, dm: 1.0}, target, target)
        return dp, dm

    def _solve(self, vecs, time_limit: float, stats: SolveStats) -> dict[int, np.ndarray]:
        nvar = len(self.lb)
        stats.variables += nvar
        data, ri, ci, lo, hi = [], [], [], [], []
        for r, (terms, a, b) in enumerate(self.rows):
            for v, c in terms.items():
                if c != 0:
                    ri.append(r)
                    ci.append(v)
                    data.append(c)
            lo.append(a)
            hi.append(b)
        constraints = ()
        if self.rows:
            matrix = scipy.sparse.csr_array((data, (ri, ci)), shape=(len(self.rows), nvar))
            constraints = scipy.optimize.LinearConstraint(matrix, lo, hi)
        res = scipy.optimize.milp(
            np.asarray(self.cost),
            integrality=np.asarray(self.integer),
            bounds=scipy.optimize.Bounds(np.asarray(self.lb, float), np.asarray(self.ub, float)),
            constraints=constraints,
            # HiGHS presolve costs more than it saves on these small, already reduced problems (measured).
            options={"time_limit": float(time_limit), "disp": False, "mip_rel_gap": 1e-6, "presolve": False},
        )
        if res.status == 1:
            if res.x is None:
                members = [m for g in self.comp for m in self.groups[g].members]
                raise SizeChangeError(
                    f"the size solver hit its time limit of {time_limit} s without a solution for vertices "
                    f"{members}; raise time_limit or make a smaller change"
                )
            warnings.warn(
                f"the size solver hit its time limit of {time_limit} s; using the best selection found so far",
                RuntimeWarning,
                stacklevel=4,
            )
        elif res.status != 0 or res.x is None:
            raise _Infeasible(res.message)
        x = np.rint(res.x).astype(np.int64)
        out = {}
        for g in self.comp:
            group = self.groups[g]
            if group.pseudo is not None:
                continue
            entries, gaps = vecs[g]
            arr = join_selection([x[e] > 0 for e in entries], [int(sum(x[v] for v in gp)) for gp in gaps])
            if arr.shape != (group.n,) or np.any(arr != np.arange(group.n)):
                out[g] = arr
        return out
