"""What the plotting callbacks read from a population, and how they store it (JSON, written atomically).

The callbacks see populations duck-typed: any iterable of candidates (objects with ``graph``, ``fitness``,
``optimiser`` and ``batch_size`` attributes, as ``ng.Candidate``), with an optional integer ``generation``
attribute. Optimiser specs are read through ``learning_rate`` and their class name; ``ShieldedOpt`` and
``OptimiserChain`` are recognised by class name so that this module does not depend on the training package.
"""

from __future__ import annotations

import json
import math
import operator
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FORMAT = "naivega_jax.plot/1"

_SHIELD = "ShieldedOpt"
_CHAIN = "OptimiserChain"


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
    """The candidate's fitness as a float, or None when it is invalid: None, not a number, NaN or infinite."""
    value = field(cand, "fitness", where)
    if value is None:
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


def _wrapped(opt: Any) -> Any:
    """The rule a ``ShieldedOpt`` wraps: its single dataclass field, or a conventionally named attribute."""
    for name in ("optimiser", "rule", "opt", "inner"):
        if hasattr(opt, name):
            return getattr(opt, name)
    values = list(vars(opt).values()) if hasattr(opt, "__dict__") else []
    if len(values) == 1:
        return values[0]
    raise TypeError(f"cannot find the optimiser wrapped by {opt!r}")


def _members(chain: Any) -> tuple[Any, ...]:
    """The optimisers of an ``OptimiserChain``: its first tuple or list attribute."""
    for name in ("optimisers", "opts", "rules"):
        if hasattr(chain, name):
            return tuple(getattr(chain, name))
    for value in vars(chain).values() if hasattr(chain, "__dict__") else ():
        if isinstance(value, (tuple, list)):
            return tuple(value)
    raise TypeError(f"cannot find the members of {chain!r}")


def _flat(opt: Any) -> list[Any]:
    if type(opt).__name__ == _CHAIN:
        return [leaf for member in _members(opt) for leaf in _flat(member)]
    return [opt]


def _unshield(opt: Any) -> Any:
    while type(opt).__name__ == _SHIELD:
        opt = _wrapped(opt)
    return opt


def optimiser_type(opt: Any) -> str:
    """The class name of the first chain element that is not shielded (``"default"`` for no optimiser spec).

    A shielded rule in a chain is typically a global learning-rate schedule shared by the whole population, so the
    first unshielded element is the one that says what the candidate's own optimiser is. If every element is
    shielded, the first element's wrapped rule names the type.
    """
    if opt is None:
        return "default"
    leaves = _flat(opt)
    for leaf in leaves:
        if type(leaf).__name__ != _SHIELD:
            return type(leaf).__name__
    inner = _unshield(leaves[0])
    return type(inner).__name__ if type(inner).__name__ != _CHAIN else optimiser_type(inner)


def learning_rate(opt: Any) -> float | None:
    """The spec's ``learning_rate``; for a chain without one, the product of its members' (as NaiveGAflux).

    Members without a learning rate (weight decay) do not count; None when nothing in the spec has one.
    """
    if opt is None:
        return None
    lr = getattr(opt, "learning_rate", None)
    if lr is not None:
        return _finite_or_none(lr)
    if type(opt).__name__ == _SHIELD:
        return learning_rate(_wrapped(opt))
    if type(opt).__name__ == _CHAIN:
        rates = [r for r in (learning_rate(m) for m in _members(opt)) if r is not None]
        return math.prod(rates) if rates else None
    return None


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


def write_atomic(path: Path, write: Callable[[Any], None]) -> Path:
    """Runs ``write(binary_file)`` on a temporary file beside ``path``, then renames it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with mode 0o666 lets the umask decide the permissions (mkstemp would force 0o600).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_figure(fig: Any, path: Path, dpi: float = 100) -> Path:
    """Writes a matplotlib ``Figure`` as PNG atomically (the Agg canvas; pyplot is never used)."""
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
