"""What the plotting callbacks read from a population, and how they store it (JSON, written atomically).

The callbacks see populations duck-typed: any iterable of candidates (objects with ``graph``, ``fitness``,
``optimiser`` and ``batch_size`` attributes, as ``ng.Candidate``), with an optional integer ``generation``
attribute (as ``ng.Population``). Optimiser specs are read through ``learning_rate`` and their class name.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._files import write_atomic
from ..train import OptimiserChain, ShieldedOpt, WeightDecay

FORMAT = "naivega_jax.plot/1"


def candidates(population: Iterable[Any], where: str) -> list[Any]:
    """The population's candidates as a list; raises a clear error for a non-iterable or empty population."""
    try:
        cands = list(population)
    except TypeError:
        raise TypeError(
            f"{where}: population must be an iterable of candidates (ng.Population or a list of ng.Candidate), "
            f"got {type(population).__name__}"
        ) from None
    if not cands:
        raise ValueError(f"{where}: the population is empty; a callback needs at least one candidate")
    return cands


def field(cand: Any, name: str, where: str) -> Any:
    try:
        return getattr(cand, name)
    except AttributeError:
        raise TypeError(
            f"{where}: candidates need a {name!r} attribute (as ng.Candidate has), got {type(cand).__name__}"
        ) from None


def fitness_value(cand: Any, where: str) -> float | None:
    """The candidate's fitness as a float, or None when it is invalid.

    Invalid: None (unscored), not a number, NaN or infinite, or the candidate's evaluation failed (its ``info``
    has a ``"failure"`` reason: ``ng.evolution.evaluate`` then scores it with the fitness strategy's invalid value,
    which
    says nothing about the architecture).
    """
    value = field(cand, "fitness", where)
    info = getattr(cand, "info", None)
    if value is None or (isinstance(info, Mapping) and info.get("failure")):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def generation_of(population: Any, stored: Iterable[int]) -> int:
    """``population.generation`` when it has one; else the generation after the last stored one (1 at first)."""
    gen = getattr(population, "generation", None)
    if gen is None:
        return max(stored, default=0) + 1
    try:
        if isinstance(gen, bool):
            raise TypeError
        gen = operator.index(gen)
    except TypeError:
        raise TypeError(f"population.generation must be an int, got {type(gen).__name__}: {gen!r}") from None
    if gen < 1:
        raise ValueError(f"population.generation must be >= 1, got {gen}")
    return gen


def _leaves(opt: Any, shielded: bool = False) -> list[tuple[Any, bool]]:
    """The rules of a spec in chain order, shields and chains unwrapped, each with whether it was shielded."""
    if isinstance(opt, OptimiserChain):
        return [leaf for member in opt.optimisers for leaf in _leaves(member, shielded)]
    if isinstance(opt, ShieldedOpt):
        return _leaves(opt.optimiser, True)
    return [(opt, shielded)]


def optimiser_type(opt: Any) -> str:
    """The class name of the first rule in the chain that is neither shielded nor a ``WeightDecay``.

    A shielded rule in a chain is typically a population-wide learning-rate schedule, and weight decay has no
    learning rate, so the first other rule is the one that says what the candidate's own optimiser is. Failing
    that, the first shielded rule that is not a ``WeightDecay``, then ``"WeightDecay"``. ``"default"`` stands for
    no spec (the fitness strategy's default optimiser).
    """
    if opt is None:
        return "default"
    leaves = _leaves(opt)
    for wanted in (False, True):
        for rule, shielded in leaves:
            if shielded == wanted and not isinstance(rule, WeightDecay):
                return type(rule).__name__
    return type(leaves[0][0]).__name__


def learning_rate(opt: Any) -> float | None:
    """The spec's ``learning_rate`` (for a chain, the product of its members'); None without a spec."""
    return None if opt is None else _finite_or_none(getattr(opt, "learning_rate", None))


def _finite_or_none(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def load_records(path: Path, owner: str) -> dict[int, dict[str, Any]]:
    """Stored records by generation; empty when the file does not exist yet."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data.get("callback") != owner:
            raise ValueError(f"format {data.get('format')!r}, callback {data.get('callback')!r}")
        return {int(r["generation"]): dict(r) for r in data["generations"]}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(
            f"{owner}: cannot read its stored data {str(path)!r} ({e}); expected a {FORMAT} file written by "
            f"{owner}. Move the file away to start the plot afresh."
        ) from None


def save_records(path: Path, owner: str, records: dict[int, dict[str, Any]]) -> None:
    data = {"format": FORMAT, "callback": owner, "generations": [records[g] for g in sorted(records)]}
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=1).encode()))


def save_figure(fig: Any, path: Path, dpi: float = 100) -> Path:
    """Writes a matplotlib ``Figure`` as PNG atomically (the Agg canvas; pyplot is never used)."""
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
