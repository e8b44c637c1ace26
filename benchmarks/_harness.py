"""What every regression benchmark shares: its command line, timing, the machine record and the result files.

A benchmark builds its parser with ``parser(__doc__, quick=...)`` (adding its own options), times with
``time_repeats``, and ends with ``write_result(name, args, summary=..., rows=...)``, which writes
``<out>/<name>.json`` (the numbers, the arguments and ``machine()``) and ``<out>/<name>.md`` (the same as Markdown
tables). ``--out`` defaults to ``benchmarks/results/`` and, with ``--quick``, to ``benchmarks/results/quick/``, so a
smoke run never overwrites a measurement.

``--quick`` is each benchmark's smoke setting: the same code path on less data and fewer repeats, under 30 s on 2
CPU cores; its numbers only show that the path runs (``make bench-quick``, ``tests/test_benchmarks_quick.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the packages whose versions a result records
PACKAGES = ("naivega-jax", "jax", "jaxlib", "flax", "optax", "numpy", "scipy")


# ---------------------------------------------------------------------------------------------------------------
# Command line


def parser(doc: str | None, *, quick: str) -> argparse.ArgumentParser:
    """The benchmark's parser, with ``--quick`` (help text ``quick``: what the smoke setting runs) and ``--out``.

    The description is the first line of ``doc`` (the module docstring).
    """
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true", help=f"smoke setting, under 30 s on 2 cores: {quick}")
    p.add_argument(
        "--out",
        default=None,
        help="directory for <name>.json and <name>.md (default: benchmarks/results/, with --quick "
        "benchmarks/results/quick/)",
    )
    return p


def out_dir(args: argparse.Namespace) -> Path:
    """Where the results go: ``--out``, else ``benchmarks/results/`` (``.../quick/`` with ``--quick``)."""
    if getattr(args, "out", None) is not None:
        return Path(args.out)
    return RESULTS / "quick" if getattr(args, "quick", False) else RESULTS


# ---------------------------------------------------------------------------------------------------------------
# Timing


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of repeated calls (warm-up calls excluded)."""

    samples: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def sd(self) -> float | None:
        """Sample standard deviation (n - 1); None for one sample."""
        return statistics.stdev(self.samples) if len(self.samples) > 1 else None

    def as_dict(self, unit: str = "s") -> dict[str, Any]:
        """``{mean, sd, min, median, n}`` in ``unit`` ("s" or "ms")."""
        scale = {"s": 1.0, "ms": 1e3}[unit]
        sd = self.sd
        return {
            f"mean_{unit}": self.mean * scale,
            f"sd_{unit}": None if sd is None else sd * scale,
            f"min_{unit}": self.min * scale,
            f"median_{unit}": self.median * scale,
            "n": len(self.samples),
        }


def time_repeats(fn: Callable[[], Any], *, repeats: int, warmup: int = 0) -> tuple[Timing, Any]:
    """Calls ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; returns the timing and the last result."""
    if repeats < 1:
        raise ValueError(f"time_repeats: repeats must be at least 1, got {repeats!r}")
    out = None
    for _ in range(warmup):
        out = fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return Timing(tuple(samples)), out


# ---------------------------------------------------------------------------------------------------------------
# The machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def nproc() -> int | None:
    """Cores this process may run on (``nproc``: the affinity mask, not the machine's count)."""
    try:
        return int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    except (OSError, ValueError, subprocess.CalledProcessError):
        return os.cpu_count()


def git_commit(cwd: Path = HERE) -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=cwd, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def machine(*, backend: bool = True) -> dict[str, Any]:
    """The machine and software of a measurement: CPU, cores, versions, JAX's backend, date, commit, load.

    ``backend=False`` leaves JAX uninitialised (for a process that only starts others).
    """
    record: dict[str, Any] = {
        "cpu": cpu_model(),
        "nproc": nproc(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        **versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "loadavg_1_5_15_min": list(os.getloadavg()),
    }
    if backend:
        import jax

        record["backend"] = jax.default_backend()
        record["devices"] = [str(d) for d in jax.devices()]
    return record


def configure_xla_cache(setting: str) -> str:
    """Points the engine's persistent compilation cache at ``setting``: a directory, ``"fresh"`` (a new temporary
    directory, so that nothing compiled by an earlier run is read) or ``"off"``; returns what was used."""
    import naivega_jax as ng

    if setting == "off":
        ng.train.set_compilation_cache(None)
        return "off"
    path = tempfile.mkdtemp(prefix="ng-xla-") if setting == "fresh" else setting
    ng.train.set_compilation_cache(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Results


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples, paths and other objects made JSON-writable; NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return jsonable(value.tolist())
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """``rows`` as a Markdown table; ``columns`` default to every key, in first-seen order."""
    if not rows:
        return ""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_result(
    name: str,
    args: argparse.Namespace,
    *,
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]] = (),
    columns: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    record: Mapping[str, Any] | None = None,
) -> Path:
    """Writes ``<out>/<name>.json`` and ``<out>/<name>.md``; returns the JSON's path.

    The JSON holds ``benchmark``, ``quick``, ``args``, ``machine`` (``record``, default ``machine()``),
    ``summary`` (the headline numbers), ``rows`` (one per measured case) and ``extra`` (anything else). The
    Markdown shows the machine, the summary and the rows (``columns``: which, in order).
    """
    out = out_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    record = dict(machine() if record is None else record)
    quick = bool(getattr(args, "quick", False))
    result = jsonable(
        {
            "benchmark": name,
            "quick": quick,
            "args": vars(args),
            "machine": record,
            "summary": summary,
            "rows": list(rows),
            "extra": dict(extra or {}),
        }
    )
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    keys = ("cpu", "nproc", "python", "jax", "jaxlib", "flax", "optax", "backend", "date", "commit")
    lines = [
        f"# {name}" + (" (--quick: a smoke run, its numbers mean nothing)" if quick else ""),
        "",
        "; ".join(f"{k} {record[k]}" for k in keys if record.get(k) is not None)
        + f"; load average {_cell(record.get('loadavg_1_5_15_min'))}",
        "",
        markdown_table([{"summary": k, "value": v} for k, v in result["summary"].items()]),
    ]
    if result["rows"]:
        lines += ["", markdown_table(result["rows"], columns)]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"{name}: wrote {path} and {path.with_suffix('.md')}", file=sys.stderr, flush=True)
    return path
