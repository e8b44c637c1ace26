"""The regression benchmarks in benchmarks/: the shared helper (benchmarks/_harness.py) and each one's --quick run.

The smoke runs start each benchmark as ``make bench-quick`` does (a subprocess, ``--quick``, ``--out`` a temporary
directory) and check that it wrote a result holding numbers: 15-60 s each on 2 shared cores, so they are ``slow``.
The helper's tests are fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
#: each benchmark on the helper, and a summary figure its quick run must report (a positive number)
HEADLINE = {
    "bench_train": "min_throughput_ratio",
    "bench_flax": "full_median",
    "bench_compile": "flat-optimiser+opts_compile_s",
    "bench_solver": "max_solve_ms_50",
    "bench_search": "wall_s",
    "bench_distributed": "local_echo_per_member_ms",
    "bench_memory": "rss_last_mb",
}
SMOKE_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("_harness", BENCHMARKS / "_harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_harness"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------------
# The helper


def test_timing_statistics(harness):
    timing = harness.Timing((1.0, 2.0, 4.0))
    assert timing.mean == pytest.approx(7 / 3)
    assert timing.median == 2.0
    assert timing.min == 1.0
    assert timing.sd == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert timing.as_dict("ms") == {
        "mean_ms": pytest.approx(7000 / 3),
        "sd_ms": pytest.approx(1527.525, rel=1e-6),
        "min_ms": 1000.0,
        "median_ms": 2000.0,
        "n": 3,
    }
    assert harness.Timing((0.5,)).sd is None


def test_time_repeats_runs_warmups_untimed(harness):
    calls = []
    timing, last = harness.time_repeats(lambda: calls.append(len(calls)) or len(calls), repeats=3, warmup=2)
    assert len(calls) == 5  # 2 warm-up calls, then 3 timed
    assert len(timing.samples) == 3 and all(s >= 0 for s in timing.samples)
    assert last == 5
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        harness.time_repeats(lambda: None, repeats=0)


def test_parser_standard_options_and_out_dir(harness):
    p = harness.parser("First line.\n\nMore.", quick="tiny")
    assert p.description == "First line."
    args = p.parse_args([])
    assert args.quick is False and harness.out_dir(args) == BENCHMARKS / "results"
    assert harness.out_dir(p.parse_args(["--quick"])) == BENCHMARKS / "results" / "quick"
    assert harness.out_dir(p.parse_args(["--quick", "--out", "/x/y"])) == Path("/x/y")


def test_machine_record(harness):
    record = harness.machine()
    assert record["nproc"] >= 1
    assert record["backend"] == "cpu"
    for package in ("jax", "jaxlib", "flax", "optax"):
        assert re.fullmatch(r"\d+\.\d+.*", record[package]), (package, record[package])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["date"])
    assert len(record["loadavg_1_5_15_min"]) == 3
    assert "backend" not in harness.machine(backend=False)


def test_write_result_json_and_markdown(harness, tmp_path):
    import numpy as np

    args = argparse.Namespace(quick=True, out=str(tmp_path), reps=3)
    rows = [{"case": "a|b", "ms": np.float32(1.5), "n": np.int64(3)}, {"case": "c", "ms": float("nan"), "n": 4}]
    path = harness.write_result("bench_x", args, summary={"best_ms": 1.5, "sizes": (1, 2)}, rows=rows)
    assert path == tmp_path / "bench_x.json"
    result = json.loads(path.read_text())
    assert result["benchmark"] == "bench_x" and result["quick"] is True
    assert result["args"] == {"quick": True, "out": str(tmp_path), "reps": 3}
    assert result["summary"] == {"best_ms": 1.5, "sizes": [1, 2]}
    assert result["rows"] == [{"case": "a|b", "ms": 1.5, "n": 3}, {"case": "c", "ms": None, "n": 4}]
    assert result["machine"]["nproc"] >= 1
    md = (tmp_path / "bench_x.md").read_text()
    assert md.startswith("# bench_x (--quick")
    assert "| best_ms | 1.5 |" in md and "| sizes | 1, 2 |" in md
    assert "| case | ms | n |\n|---|---|---|\n| a\\|b | 1.5 | 3 |\n| c | - | 4 |" in md


def test_makefile_runs_every_benchmark_on_the_helper():
    text = (ROOT / "Makefile").read_text()
    listed = re.search(r"^BENCHMARKS := (.*)$", text, re.MULTILINE).group(1).split()
    assert sorted(listed) == sorted(HEADLINE)
    assert "bench_baselines.py mnist1d --quick" in text


# ---------------------------------------------------------------------------------------------------------------
# The smoke runs


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    # The fresh compilation caches the benchmarks make go to a temporary directory of the run's own, deleted after;
    # not under pytest's tmp_path, whose long names overflow Ray's socket paths (at most 107 bytes).
    scratch = tempfile.mkdtemp(prefix="ngq-")
    try:
        env = {**os.environ, "TMPDIR": scratch}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=SMOKE_TIMEOUT_S)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert proc.returncode == 0, f"{cmd} exited with {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEADLINE))
def test_quick_run_writes_a_result_with_numbers(name, tmp_path):
    if name == "bench_distributed":
        pytest.importorskip("ray")
    out = tmp_path / "out"
    _run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick", "--out", str(out)])
    result = json.loads((out / f"{name}.json").read_text())
    assert result["benchmark"] == name and result["quick"] is True and result["args"]["quick"] is True
    assert result["machine"]["nproc"] >= 1 and result["machine"]["jax"]
    headline = result["summary"][HEADLINE[name]]
    assert isinstance(headline, (int, float)) and math.isfinite(headline) and headline > 0, headline
    assert result["rows"], "no measured case"
    assert all(math.isfinite(n) for n in _numbers(result["rows"]))
    assert "| summary | value |" in (out / f"{name}.md").read_text()


@pytest.mark.slow
def test_baselines_quick_run_writes_runs_and_report(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(BENCHMARKS / "bench_baselines.py"), "mnist1d", "--quick"]
    _run([*cmd, "--out", str(out), "--work", str(tmp_path / "work")])
    search = json.loads((out / "mnist1d-quick-search-seed0.json").read_text())
    random = json.loads((out / "mnist1d-quick-random3-seed0.json").read_text())
    assert 0.0 < search["test_accuracy"] <= 1.0 and 0.0 < random["test_accuracy"] <= 1.0
    assert search["wall_seconds"] > 0 and search["train_examples"] > 0
    # random search trains on what the search spent: 3 members x 1 epoch x 540 examples (600, less validation)
    assert random["budget"] == search["train_examples"] == 1620
    assert random["members"] == 3
    assert "### mnist1d, quick" in (out / "report.md").read_text()
    assert not (out / "baselines_accuracy_vs_budget.png").exists()
