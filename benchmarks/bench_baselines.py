"""Does the search beat the baselines users compare it with? Random search at equal examples, a hand-written CNN.

Every benchmarked run is a separate process (the ``naivega fit`` command a user runs, or this script's own ``cnn``
subcommand) with an empty persistent XLA compilation cache of its own (``NAIVEGA_JAX_XLA_CACHE`` pointed at a fresh
temporary directory, deleted afterwards), so no run reads another's compiles from disk. Each run writes one JSON
(results, the run's ``summary.json`` totals, the machine) under the output directory; a run whose JSON exists is
skipped, so an interrupted benchmark continues where it stopped.

Experiments:

* ``mnist1d --budget-factor F --seeds 0 1 2 3 4``: per seed, the default search (``naivega fit --seed S
  --generations 6F``) and random search (``naivega fit --strategy random --population K --budget B``) for K in 8, 16,
  24, with B the training examples the search spent (its ``totals.train_examples``).
* ``fmnist-subset --seeds ...``: the same on the first 10,000 Fashion-MNIST training images (``--subset 10000``) at
  the default search's budget (6 generations).
* ``fmnist-time --minutes M --seeds ...``: on all of Fashion-MNIST, the search with ``--time-budget Mm`` (and
  generations without limit, so the time is what stops it) against a standard CNN (conv 3x3 32 relu, maxpool 2,
  conv 3x3 64 relu, maxpool 2, flatten, dense 128 relu, dense 10; Adam 1e-3, batch 128) built with
  ``ng.build_graph`` and trained by ``ng.train_graph`` epoch by epoch on the same training examples (the data
  minus its last 10%, fit's validation split) for the same minutes. The search's first generation holds the same
  architecture (``ng.autofit.conventional_space``, at batch size 32) among the members it draws, as every image
  search by default: the search has to beat it to replace it, and the CNN here is trained as its user would.
* ``--anneal`` (``mnist1d``, ``fmnist-subset``): both strategies run with ``naivega fit --anneal``, so the search's
  last generation and random search's members train in the same learning-rate steps; the setting is named
  ``F1-anneal`` or ``n10000-anneal`` (give it its own ``--out`` to keep its report and plot apart).
* ``report``: tables (mean +- sd over seeds) in ``report.md`` beside the JSONs and a plot of test accuracy against
  training examples in ``benchmarks/results/baselines_accuracy_vs_budget.png``.

Run: ``.venv/bin/python benchmarks/bench_baselines.py mnist1d --budget-factor 1 --seeds 0 1 2 3 4``, then
``.venv/bin/python benchmarks/bench_baselines.py report``. ``mnist1d --quick`` is a smoke run of the same path
(seed 0: a search of 1 generation of 3 members and 1 epoch on the first 600 examples, then random search K=3 at its
examples, and the report without the plot) into ``benchmarks/results/quick/baselines/`` unless ``--out`` says
otherwise; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402

DEFAULT_OUT = HERE / "results" / "baselines"
DEFAULT_PNG = HERE / "results" / "baselines_accuracy_vs_budget.png"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "bench_baselines_runs"
MEMBERS = (8, 16, 24)
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: ``mnist1d --quick``: where it writes, and the ``naivega fit`` options of its search (random search takes the
#: same data options with its own ``--population``)
QUICK_OUT = HERE / "results" / "quick" / "baselines"
QUICK_OPTIONS = ("--dataset", "mnist1d", "--subset", "600", "--population", "3", "--epochs", "1")
QUICK_MEMBERS = (3,)
FMNIST_SUBSET = 10_000
#: the setting's suffix with ``--anneal`` (both strategies train their last generation in learning-rate steps)
ANNEAL_SUFFIX = "-anneal"
#: fit's validation split: the last 10% of the training data, which the CNN leaves out as well
VALIDATION_SPLIT = 0.1
#: generations for the timed search: more than fit in any time budget here, so the time budget stops it
UNLIMITED_GENERATIONS = 100_000
#: the CNN starts another epoch unless it would end more than this share of an epoch after the time budget
EPOCH_SLACK = 0.1


def machine_info() -> dict[str, Any]:
    """The machine and software a run was measured on (this process does not start JAX: its runs do)."""
    record = _harness.machine(backend=False)
    return {
        "nproc": record["nproc"],
        "cpu": record["cpu"],
        "jax": record["jax"],
        "jaxlib": record["jaxlib"],
        "python": record["python"],
        "commit": record["commit"],
        "date": record["date"],
        "loadavg_1_5_15_min_at_end": record["loadavg_1_5_15_min"],
    }


# ---------------------------------------------------------------------------------------------------------------
# Running one configuration in its own process


def _fresh_cache_env() -> tuple[dict[str, str], str]:
    cache = tempfile.mkdtemp(prefix="ng-bench-xla-")
    return {**os.environ, "NAIVEGA_JAX_XLA_CACHE": cache}, cache


def _run_process(cmd: list[str], log: Path) -> tuple[int, float]:
    """Runs ``cmd`` with an empty compilation cache of its own; returns its exit status and wall seconds."""
    env, cache = _fresh_cache_env()
    start = time.perf_counter()
    try:
        with log.open("w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=HERE.parent).returncode
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return rc, time.perf_counter() - start


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_fit(run_dir: Path, options: Sequence[str]) -> dict[str, Any]:
    """``naivega fit --out run_dir --quiet *options`` in a fresh process; what its summary.json says."""
    if run_dir.exists():  # a run cut short earlier: start again, so that wall times are one session's
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    cmd = [sys.executable, "-m", "naivega_jax.cli", "fit", "--out", str(run_dir), "--quiet", *options]
    rc, seconds = _run_process(cmd, log)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with status {rc}:\n{_tail(log)}")
    summary = json.loads((run_dir / "summary.json").read_text())
    run_json = json.loads((run_dir / "run.json").read_text())
    best = summary.get("best") or {}
    totals = summary["totals"]
    return {
        "command": " ".join(["naivega", "fit", *options]),
        "test_accuracy": best.get("test_accuracy"),
        "validation_accuracy": best.get("validation_accuracy"),
        "fitness": best.get("fitness"),
        "nparams": best.get("nparams"),
        "train_examples": int(totals.get("train_examples", 0)),
        "candidate_epochs": round(float(totals.get("candidate_epochs", 0)), 2),
        "wall_seconds": totals.get("wall_seconds"),
        "compile_seconds": totals.get("compile_seconds"),
        "train_seconds": totals.get("train_seconds"),
        "evaluations": totals.get("evaluations"),
        "process_seconds": seconds,
        "n_train": run_json.get("n_train"),
        "summary": {k: summary.get(k) for k in ("generation", "stopped", "totals", "engine", "best")},
    }


def run_cnn(run_dir: Path, seed: int, minutes: float) -> dict[str, Any]:
    """This script's ``cnn`` subcommand in a fresh process; what it wrote."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "cnn.json"
    out.unlink(missing_ok=True)
    options = ["--seed", str(seed), "--minutes", str(minutes), "--json", str(out)]
    rc, seconds = _run_process([sys.executable, str(Path(__file__).resolve()), "cnn", *options], run_dir / "cnn.log")
    if rc != 0:
        raise RuntimeError(f"the CNN baseline exited with status {rc}:\n{_tail(run_dir / 'cnn.log')}")
    return {**json.loads(out.read_text()), "process_seconds": seconds}


# ---------------------------------------------------------------------------------------------------------------
# The hand-written CNN (runs inside its own process: the `cnn` subcommand)


def cnn_graph(key: Any, in_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10) -> Any:
    """conv 3x3 32 relu -> maxpool 2 -> conv 3x3 64 relu -> maxpool 2 -> flatten -> dense 128 relu -> dense 10."""
    import naivega_jax as ng

    x = ng.input_vertex("in", shape=in_shape)
    h = ng.vertex("conv1", ng.Conv(32, (3, 3), activation="relu"), x)
    h = ng.vertex("pool1", ng.MaxPool(2), h)
    h = ng.vertex("conv2", ng.Conv(64, (3, 3), activation="relu"), h)
    h = ng.vertex("pool2", ng.MaxPool(2), h)
    h = ng.vertex("flatten", ng.Flatten(), h)
    h = ng.vertex("dense1", ng.Dense(128, activation="relu"), h)
    return ng.build_graph(key, inputs=x, outputs=ng.vertex("out", ng.Dense(classes), h))


def should_start_epoch(spent: float, last_epoch: float | None, budget: float) -> bool:
    """Whether another epoch fits: it would end at most ``EPOCH_SLACK`` of an epoch after the budget, judged by
    the last epoch's seconds (compile excluded)."""
    if last_epoch is None:
        return spent < budget
    return spent + last_epoch <= budget + EPOCH_SLACK * last_epoch


def cnn_main(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    import naivega_jax as ng

    x, y, x_te, y_te = ng.datasets.load("fashion-mnist")
    x_tr, y_tr, _, _ = ng.data.train_val_split(x, y, VALIDATION_SPLIT)
    x_tr, y_tr = jax.device_put(np.asarray(x_tr)), jax.device_put(np.asarray(y_tr))
    budget = 60.0 * args.minutes
    init_key, train_key = jax.random.split(jax.random.key(args.seed))
    start = time.perf_counter()
    graph = cnn_graph(init_key, tuple(int(s) for s in x.shape[1:]), int(np.max(y)) + 1)
    spent, last, epochs, compile_s = time.perf_counter() - start, None, [], 0.0
    opt_state = None  # Adam's moments and step count run on from epoch to epoch, as in any hand-written loop
    while should_start_epoch(spent, last, budget):
        t0 = time.perf_counter()
        r = ng.train_graph(
            jax.random.fold_in(train_key, len(epochs)),
            graph,
            x_tr,
            y_tr,
            optimiser=ng.Adam(1e-3),
            batch_size=128,
            epochs=1,
            opt_state=opt_state,
        )
        seconds = time.perf_counter() - t0
        if r.nonfinite:
            raise RuntimeError(f"the CNN's loss became {r.failure!r} in epoch {len(epochs) + 1}")
        graph, opt_state, spent, compile_s = r.graph, r.opt_state, spent + seconds, compile_s + r.compile_seconds
        last = seconds - r.compile_seconds
        acc = ng.evaluate_accuracy(graph, x_te, y_te)  # measurement, not training: outside the budget
        epochs.append(
            {
                "epoch": len(epochs) + 1,
                "seconds": seconds,
                "compile_seconds": r.compile_seconds,
                "train_loss": float(np.mean(r.losses)),
                "test_accuracy": acc,
                "elapsed": spent,
            }
        )
        print(f"epoch {len(epochs)}: {seconds:.1f} s, test accuracy {acc:.4f}", flush=True)
    result = {
        "command": f"bench_baselines.py cnn --seed {args.seed} --minutes {args.minutes}",
        "test_accuracy": epochs[-1]["test_accuracy"] if epochs else None,
        "nparams": ng.nparams(graph),
        "epochs": len(epochs),
        "per_epoch": epochs,
        "train_examples": len(epochs) * int(x_tr.shape[0]),
        "candidate_epochs": len(epochs),
        "wall_seconds": spent,
        "compile_seconds": compile_s,
        "train_seconds": spent - compile_s,
        "budget_seconds": budget,
        "n_train": int(x_tr.shape[0]),
        "optimiser": "Adam(1e-3), its state continued from epoch to epoch (train_graph's opt_state)",
        "batch_size": 128,
    }
    Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Experiments


def result_path(out: Path, experiment: str, setting: str, config: str, seed: int) -> Path:
    return out / f"{experiment}-{setting}-{config}-seed{seed}.json"


def _record(
    out: Path, experiment: str, setting: str, config: str, seed: int, result: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    record = {
        "experiment": experiment,
        "setting": setting,
        "config": config,
        "seed": seed,
        **extra,
        **result,
        "machine": machine_info(),
    }
    path = result_path(out, experiment, setting, config, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    return record


def _load_record(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def search_vs_random(
    out: Path,
    work: Path,
    *,
    experiment: str,
    setting: str,
    data_options: Sequence[str],
    generations: int,
    seeds: Iterable[int],
    members: Sequence[int] = MEMBERS,
    deadline: float | None = None,
) -> None:
    """Per seed: the default search, then random search with each K at the search's spent examples."""
    for seed in seeds:
        path = result_path(out, experiment, setting, "search", seed)
        search = _load_record(path)
        if search is None:
            if _past(deadline):
                return
            print(f"[{_now()}] {experiment} {setting} seed {seed}: search", flush=True)
            options = [*data_options, "--seed", str(seed), "--generations", str(generations)]
            result = run_fit(work / path.stem, options)
            search = _record(out, experiment, setting, "search", seed, result, generations=generations)
            shutil.rmtree(work / path.stem, ignore_errors=True)
        budget = int(search["train_examples"])
        for k in members:
            config = f"random{k}"
            path = result_path(out, experiment, setting, config, seed)
            if path.is_file():
                continue
            if _past(deadline):
                return
            print(f"[{_now()}] {experiment} {setting} seed {seed}: random search K={k}, {budget} examples", flush=True)
            options = [*data_options, "--seed", str(seed), "--strategy", "random", "--population", str(k)]
            result = run_fit(work / path.stem, [*options, "--budget", str(budget)])
            n_train = result["n_train"]
            epochs = max(1, round(budget / (k * n_train)))
            _record(out, experiment, setting, config, seed, result, members=k, budget=budget, epochs_per_member=epochs)
            shutil.rmtree(work / path.stem, ignore_errors=True)


def search_vs_cnn(
    out: Path, work: Path, *, minutes: float, seeds: Iterable[int], deadline: float | None = None
) -> None:
    setting = f"{minutes:g}min"
    for seed in seeds:
        path = result_path(out, "fmnist-time", setting, "search", seed)
        if not path.is_file() and not _past(deadline):
            print(f"[{_now()}] fmnist-time {setting} seed {seed}: search", flush=True)
            options = ["--dataset", "fashion-mnist", "--seed", str(seed), "--time-budget", f"{minutes:g}m"]
            result = run_fit(work / path.stem, [*options, "--generations", str(UNLIMITED_GENERATIONS)])
            _record(out, "fmnist-time", setting, "search", seed, result, minutes=minutes)
            shutil.rmtree(work / path.stem, ignore_errors=True)
        path = result_path(out, "fmnist-time", setting, "cnn", seed)
        if not path.is_file() and not _past(deadline):
            print(f"[{_now()}] fmnist-time {setting} seed {seed}: CNN", flush=True)
            result = run_cnn(work / path.stem, seed, minutes)
            _record(out, "fmnist-time", setting, "cnn", seed, result, minutes=minutes)
            shutil.rmtree(work / path.stem, ignore_errors=True)


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _past(deadline: float | None) -> bool:
    if deadline is not None and time.time() >= deadline:
        print(f"[{_now()}] past --stop-after: starting no new run", flush=True)
        return True
    return False


# ---------------------------------------------------------------------------------------------------------------
# Report


def load_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); sd is None for fewer than 2 values, both for none."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


CONFIG_ORDER = {"search": 0, "cnn": 1}


def _config_key(config: str) -> tuple[int, int]:
    if config.startswith("random"):
        return 2, int(config[len("random") :])
    return CONFIG_ORDER.get(config, 3), 0


def _config_name(config: str) -> str:
    return f"random K={config[len('random') :]}" if config.startswith("random") else config


def summarise(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (experiment, setting): per configuration the means and sds over seeds, the comparison with the search
    on the same seeds, and the strongest random K (highest mean test accuracy)."""
    groups: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in records:
        groups.setdefault((r["experiment"], r["setting"]), {}).setdefault(r["config"], {})[r["seed"]] = r
    result = {}
    for group, configs in sorted(groups.items()):
        search = configs.get("search", {})
        rows = {}
        for config in sorted(configs, key=_config_key):
            runs = configs[config]
            row = {"config": config, "name": _config_name(config), "seeds": sorted(runs), "runs": runs}
            for field in ("test_accuracy", "nparams", "wall_seconds", "compile_seconds", "train_examples"):
                row[field] = mean_sd([r.get(field) for r in runs.values()])
            row["candidate_epochs"] = mean_sd([r.get("candidate_epochs") for r in runs.values()])
            row["background_compile_seconds"] = mean_sd([_background_compile(r) for r in runs.values()])
            row["epochs_per_member"] = sorted(
                {r["epochs_per_member"] for r in runs.values() if "epochs_per_member" in r}
            )
            row["nparams_range"] = _range([r.get("nparams") for r in runs.values()])
            if config != "search":
                row.update(_versus(search, runs))
            rows[config] = row
        randoms = [row for c, row in rows.items() if c.startswith("random") and row["test_accuracy"][0] is not None]
        strongest = max(randoms, key=lambda row: row["test_accuracy"][0])["config"] if randoms else None
        loads = [
            r["machine"]["loadavg_1_5_15_min_at_end"][1]
            for runs in configs.values()
            for r in runs.values()
            if "loadavg_1_5_15_min_at_end" in r.get("machine", {})
        ]
        result[group] = {
            "rows": rows,
            "strongest_random": strongest,
            "load_5min": (min(loads), max(loads)) if loads else None,
        }
    return result


def _background_compile(record: dict[str, Any]) -> float | None:
    """Seconds ``fit``'s background thread compiled while members trained (None for the CNN, which has none)."""
    return ((record.get("summary") or {}).get("engine") or {}).get("background_compile_seconds")


def _range(values: Iterable[Any]) -> tuple[int, int] | None:
    values = [int(v) for v in values if v is not None]
    return (min(values), max(values)) if values else None


def _versus(search: dict[int, dict[str, Any]], runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """On the seeds both ran: how often this configuration's test accuracy matched or beat the search's, and the
    search's wall time over this one's (mean of the per-seed ratios) and examples over this one's."""
    both = [
        s
        for s in sorted(set(search) & set(runs))
        if search[s].get("test_accuracy") is not None and runs[s].get("test_accuracy") is not None
    ]
    wins = [s for s in both if runs[s]["test_accuracy"] >= search[s]["test_accuracy"]]
    ratios = [search[s]["wall_seconds"] / runs[s]["wall_seconds"] for s in both if runs[s].get("wall_seconds")]
    examples = [search[s]["train_examples"] / runs[s]["train_examples"] for s in both if runs[s].get("train_examples")]
    differences = [search[s]["test_accuracy"] - runs[s]["test_accuracy"] for s in both]
    return {
        "paired_seeds": both,
        "accuracy_search_minus_this": mean_sd(differences),
        "matched_or_beat": wins,
        "wall_ratio_search_over_this": mean_sd(ratios),
        "examples_ratio_search_over_this": mean_sd(examples),
    }


def _fmt(pair: tuple[float | None, float | None], digits: int, scale: float = 1.0) -> str:
    mean, sd = pair
    if mean is None:
        return "-"
    text = f"{mean * scale:,.{digits}f}"
    return text + (f" +- {sd * scale:,.{digits}f}" if sd is not None else "")


def format_report(summary: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The summary as markdown tables, one per (experiment, setting)."""
    lines = []
    for (experiment, setting), group in summary.items():
        rows = group["rows"]
        lines += [
            f"### {experiment}, {setting}",
            "",
            "| configuration | seeds | test accuracy % | parameters (min-max) | wall s | compile s waited "
            "| compile s in background | train examples "
            "| candidate epochs | seeds matching or beating the search | search - this, points (paired) "
            "| wall ratio search / this |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows.values():
            name = row["name"] + (
                f" ({'/'.join(map(str, row['epochs_per_member']))} ep.)" if row["epochs_per_member"] else ""
            )
            versus, difference, ratio = "-", "-", "-"
            if "paired_seeds" in row:
                versus = f"{len(row['matched_or_beat'])} of {len(row['paired_seeds'])}"
                difference = _fmt(row["accuracy_search_minus_this"], 2, 100)
                ratio = _fmt(row["wall_ratio_search_over_this"], 2)
            low_high = row["nparams_range"]
            params = _fmt(row["nparams"], 0) + (f" ({low_high[0]:,}-{low_high[1]:,})" if low_high else "")
            lines.append(
                f"| {name} | {len(row['seeds'])} | {_fmt(row['test_accuracy'], 2, 100)} | {params} "
                f"| {_fmt(row['wall_seconds'], 1)} | {_fmt(row['compile_seconds'], 1)} "
                f"| {_fmt(row['background_compile_seconds'], 1)} "
                f"| {_fmt(row['train_examples'], 0)} | {_fmt(row['candidate_epochs'], 0)} "
                f"| {versus} | {difference} | {ratio} |"
            )
        lines += ["", *_per_seed_table(group)]
        loads = group.get("load_5min")
        if loads:
            lines += [
                "",
                f"5-minute load average of the machine when each run ended: {loads[0]:.1f} to {loads[1]:.1f}.",
            ]
        strongest = group["strongest_random"]
        if strongest is not None:
            row = rows[strongest]
            lines.append("")
            lines.append(
                f"Strongest random search: {row['name']} ({_fmt(row['test_accuracy'], 2, 100)} % test accuracy); "
                f"it matched or beat the search on {len(row['matched_or_beat'])} of {len(row['paired_seeds'])} seeds."
            )
        lines.append("")
    return "\n".join(lines)


def _per_seed_table(group: dict[str, Any]) -> list[str]:
    """Test accuracy % of every configuration on every seed."""
    rows = group["rows"]
    seeds = sorted({s for row in rows.values() for s in row["seeds"]})
    lines = [
        "| seed | " + " | ".join(row["name"] for row in rows.values()) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    for seed in seeds:
        cells = []
        for row in rows.values():
            run = row["runs"].get(seed)
            acc = None if run is None else run.get("test_accuracy")
            cells.append("-" if acc is None else f"{100 * acc:.1f}")
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return lines


def plot_report(records: Sequence[dict[str, Any]], summary: dict[tuple[str, str], dict[str, Any]], png: Path) -> None:
    """Test accuracy against training examples, one panel per experiment: every run a dot, means +- sd."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    experiments = sorted({experiment for experiment, _ in summary})
    if not experiments:
        return
    fig, axes = plt.subplots(1, len(experiments), figsize=(5.5 * len(experiments), 4.2), squeeze=False)
    colours = {}
    for ax, experiment in zip(axes[0], experiments, strict=True):
        series: dict[str, list[tuple[float, float, float]]] = {}
        for (exp, _), group in summary.items():
            if exp != experiment:
                continue
            for config, row in group["rows"].items():
                (x, _), (y, sd) = row["train_examples"], row["test_accuracy"]
                if x is not None and y is not None:
                    series.setdefault(config, []).append((x, 100 * y, 100 * (sd or 0.0)))
        for config in sorted(series, key=_config_key):
            colour = colours.setdefault(config, f"C{len(colours)}")
            points = sorted(series[config])
            runs = [r for r in records if r["experiment"] == experiment and r["config"] == config]
            ax.scatter(
                [r["train_examples"] for r in runs if r.get("test_accuracy") is not None],
                [100 * r["test_accuracy"] for r in runs if r.get("test_accuracy") is not None],
                s=10,
                alpha=0.35,
                color=colour,
            )
            ax.errorbar(
                [p[0] for p in points],
                [p[1] for p in points],
                yerr=[p[2] for p in points],
                marker="o",
                capsize=3,
                color=colour,
                label=_config_name(config),
            )
        xs = [r["train_examples"] for r in records if r["experiment"] == experiment and r.get("train_examples")]
        if xs and max(xs) > 4 * min(xs):  # budgets a factor apart: a log axis; one budget: a plain one
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(5))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}k"))
        ax.set_xlabel("training examples (all candidates' steps, summed)")
        ax.set_ylabel("test accuracy of the selected model (%)")
        ax.set_title(experiment)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def report(out: Path, png: Path | None = DEFAULT_PNG) -> str:
    """Reads every JSON under ``out``, writes ``out/report.md`` (and the plot to ``png`` unless None)."""
    records = load_records(out)
    summary = summarise(records)
    text = format_report(summary)
    (out / "report.md").write_text(text)
    if png is not None:
        plot_report(records, summary, png)
    return text


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _deadline(minutes: float | None) -> float | None:
    return None if minutes is None else time.time() + 60.0 * minutes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (--quick: 0)")
        p.add_argument("--out", type=Path, default=None, help=f"where the JSONs go (default {DEFAULT_OUT})")
        p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="run directories (deleted after each run)")
        p.add_argument("--stop-after", type=float, default=None, help="start no new run after this many minutes")

    def anneal(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--anneal",
            action="store_true",
            help="both strategies with naivega fit --anneal (the search's last generation and random search's members "
            "train in learning-rate steps); the setting is named <setting>-anneal",
        )

    p = sub.add_parser("mnist1d", help="search vs random search on MNIST-1D")
    p.add_argument("--budget-factor", type=int, default=1, help="the search runs 6 x this many generations")
    p.add_argument("--members", type=int, nargs="+", default=list(MEMBERS))
    anneal(p)
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run, under 30 s on 2 cores: seed 0, a 1-generation search of 3 members on 600 examples, random "
        f"search K=3, the report (no plot), into {QUICK_OUT} unless --out",
    )
    common(p)
    p = sub.add_parser("fmnist-subset", help="search vs random search on 10,000 Fashion-MNIST images")
    p.add_argument("--members", type=int, nargs="+", default=list(MEMBERS))
    anneal(p)
    common(p)
    p = sub.add_parser("fmnist-time", help="timed search vs a hand-written CNN on Fashion-MNIST")
    p.add_argument("--minutes", type=float, default=15.0)
    common(p)
    p = sub.add_parser("report", help="tables and plot from the JSONs")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--png", type=Path, default=DEFAULT_PNG)
    p = sub.add_parser("cnn", help="(internal) train the CNN baseline in this process")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--json", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "cnn":
        return cnn_main(args)
    if args.command == "report":
        print(report(args.out, args.png))
        return 0
    quick = getattr(args, "quick", False)
    if args.seeds is None:
        args.seeds = [0] if quick else list(DEFAULT_SEEDS)
    if args.out is None:
        args.out = QUICK_OUT if quick else DEFAULT_OUT
    deadline = _deadline(args.stop_after)
    if quick:
        for old in args.out.glob("mnist1d-quick-*.json"):  # a smoke run runs afresh, never resumes
            old.unlink()
        search_vs_random(
            args.out,
            args.work,
            experiment="mnist1d",
            setting="quick" + ANNEAL_SUFFIX * args.anneal,
            data_options=[*QUICK_OPTIONS, *["--anneal"] * args.anneal],
            generations=1,
            seeds=args.seeds,
            members=QUICK_MEMBERS,
            deadline=deadline,
        )
        print(report(args.out, png=None))
    elif args.command == "mnist1d":
        search_vs_random(
            args.out,
            args.work,
            experiment="mnist1d",
            setting=f"F{args.budget_factor}" + ANNEAL_SUFFIX * args.anneal,
            data_options=["--dataset", "mnist1d", *["--anneal"] * args.anneal],
            generations=6 * args.budget_factor,
            seeds=args.seeds,
            members=args.members,
            deadline=deadline,
        )
    elif args.command == "fmnist-subset":
        search_vs_random(
            args.out,
            args.work,
            experiment="fmnist-subset",
            setting=f"n{FMNIST_SUBSET}" + ANNEAL_SUFFIX * args.anneal,
            data_options=["--dataset", "fashion-mnist", "--subset", str(FMNIST_SUBSET), *["--anneal"] * args.anneal],
            generations=6,
            seeds=args.seeds,
            members=args.members,
            deadline=deadline,
        )
    else:
        search_vs_cnn(args.out, args.work, minutes=args.minutes, seeds=args.seeds, deadline=deadline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
