"""The closing summary of a run: the best candidate, its accuracies, where the time went, where the files are."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..evolution import Candidate, Population
from ..graph import nparams
from ..io import run_checkpoints
from ..train import evaluate_accuracy, evaluate_loss
from ..train.internal import CALL_STAT_KEYS
from ._progress import LOG_FILE, describe, format_duration
from ._regression import FITNESS_DEFINITION, baseline_mse, squared_error

SUMMARY_FILE = "summary.json"
#: what a run tallies over its sessions; ``train_examples`` (examples every candidate's steps trained on, summed) and
#: ``candidate_epochs`` (the same in passes over the training split: ``train_examples / n_train``, so a member that
#: trains on a part or a screened share of the data counts that share of an epoch) are the units in which search
#: strategies' budgets compare
TOTAL_KEYS = ("wall_seconds", "compile_seconds", "train_seconds", "evaluations", "train_examples", "candidate_epochs")


def scored_fitness(c: Candidate) -> float:
    """The fitness of a candidate the caller knows is scored (it keeps only those), as a float for max/sum."""
    return -math.inf if c.fitness is None else c.fitness


def run_rank(c: Candidate) -> tuple[bool, float]:
    """How a run orders its scored members to name its best (``best/``, the summary, ``fit``'s returned order, the
    command line's ``export``): members a final phase trained first, by the validation score their final phase
    ended with, then the rest by fitness. A final phase trains the member that won its race (see ``fit``'s
    ``final_candidates``), which need not be the one with the highest fitness.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> trained = ng.Candidate(g, fitness=0.8, info={"final": {"validation_accuracy": 0.93}})
        >>> fitter = ng.Candidate(g, fitness=0.9)
        >>> ng.autofit.run_rank(trained), ng.autofit.run_rank(fitter)
        ((True, 0.93), (False, 0.9))
        >>> max([fitter, trained], key=ng.autofit.run_rank) is trained
        True
    """
    final = c.info.get("final")
    return (True, final_score(final)) if final is not None else (False, scored_fitness(c))


def final_score(record: dict[str, Any]) -> float:
    """The validation score a final phase's record (``train_best``) ends with: its validation accuracy, or its
    validation fitness where a score other than accuracy picked its weights (regression)."""
    return float(record.get("validation_accuracy", record.get("validation_fitness", -math.inf)))


def format_epochs(epochs: float) -> str:
    """Candidate epochs as the summary prints them: to two decimals, without trailing zeros.

    Example:
        >>> from naivega_jax.autofit._summary import format_epochs
        >>> format_epochs(248.0), format_epochs(8 / 3), format_epochs(1234.5)
        ('248', '2.67', '1,234.5')
    """
    return f"{epochs:,.2f}".rstrip("0").rstrip(".")


def add_totals(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Sums two time tallies key by key (missing keys count 0)."""
    return {k: a.get(k, 0) + b.get(k, 0) for k in TOTAL_KEYS}


def run_summary(
    out_dir: Path,
    population: Population,
    *,
    stopped: str,
    session: dict[str, float],
    totals: dict[str, float],
    engine: dict[str, float],
    val_data: tuple[np.ndarray, np.ndarray],
    test_data: tuple[np.ndarray, np.ndarray] | None,
    task: str = "classification",
    train_targets: np.ndarray | None = None,
    screen: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of a run as a JSON-friendly dict (what ``summary.json`` holds).

    ``session`` and ``totals`` tally this call and the whole run (``TOTAL_KEYS``); ``engine`` is the engine's
    counters summed over the trainings of this call (``ng.train.sum_call_stats``); ``val_data`` / ``test_data`` are
    encoded and shaped like the training data.
    Classification: the best's validation and test accuracy. Regression (``train_targets``: the training targets
    ``(n, T)``): its validation and test MSE, each beside the MSE of predicting the training mean, and what the
    fitness is (``fitness_definition``).
    ``screen``: what the run recorded of its screen (``screen_record``), given with ``best_from``: the name of the
    screened member the best descends from (its lineage's first member) and its place in the screen's ranking
    (1: the screen's best; None where the screen did not train it).
    """
    scored = [c for c in population if c.fitness is not None and "failure" not in c.info]
    summary: dict[str, Any] = {
        "out_dir": str(out_dir),
        "task": task,
        "generation": population.generation,
        "stopped": stopped,
        "session": session,
        "totals": totals,
        "engine": {k: engine.get(k, 0) for k in CALL_STAT_KEYS},
        "best": None,
        "screen": None if screen is None else {**screen, "best_from": None},
        "files": {
            "checkpoint": str(run_checkpoints(out_dir)[0]) if run_checkpoints(out_dir) else None,
            "log": str(out_dir / LOG_FILE),
            "summary": str(out_dir / SUMMARY_FILE),
        },
    }
    if scored:
        best = max(scored, key=run_rank)
        summary["best"] = {
            "fitness": best.fitness,
            **(
                _accuracies(best.graph, val_data, test_data)
                if task == "classification"
                else _errors(best.graph, train_targets, val_data, test_data)
            ),
            "test_examples": None if test_data is None else int(test_data[1].shape[0]),
            "nparams": nparams(best.graph),
            "vertices": len(best.graph.vertex_names),
            "optimiser": describe(best.optimiser),
            "batch_size": best.batch_size,
        }
        if screen is not None:
            summary["screen"]["best_from"] = _screen_origin(best, screen)
        best_dir = out_dir / "best"
        summary["files"].update(
            graph=str(best_dir / "graph"), lineage=str(best_dir / "lineage.json"), picture=str(best_dir / "graph.png")
        )
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def origin_name(c: Candidate) -> str | None:
    """The name of the first generation's member ``c`` descends from (its lineage's first event; a crossover child
    follows its first parent), None without a lineage."""
    return c.lineage[0].get("name") if c.lineage else None


def _screen_origin(best: Candidate, screen: dict[str, Any]) -> dict[str, Any]:
    name = origin_name(best)
    names = [entry["name"] for entry in screen["ranking"]]
    return {"name": name, "rank": names.index(name) + 1 if name in names else None}


def _accuracies(graph, val_data, test_data) -> dict[str, Any]:
    return {
        "validation_accuracy": evaluate_accuracy(graph, *val_data),
        "test_accuracy": None if test_data is None else evaluate_accuracy(graph, *test_data),
    }


def _errors(graph, train_targets, val_data, test_data) -> dict[str, Any]:
    """MSE of ``graph`` and of predicting the training mean, on the validation and test data; the graph's MSE is
    None where its output does not have the targets' shape (a user's space and fitness may do other things)."""
    fits = len(graph.output_names) == 1 and graph.shape(graph.output_names[0]) == tuple(train_targets.shape[1:])
    out: dict[str, Any] = {"fitness_definition": FITNESS_DEFINITION}
    for split, data in (("validation", val_data), ("test", test_data)):
        if data is None:
            out.update({f"{split}_mse": None, f"{split}_baseline_mse": None})
            continue
        out[f"{split}_mse"] = evaluate_loss(graph, data[0], data[1], squared_error) if fits else None
        out[f"{split}_baseline_mse"] = baseline_mse(train_targets, data[1])
    return out


def _time_line(t: dict[str, float], engine: dict[str, float] | None) -> str:
    wall = t["wall_seconds"]
    compile_s = t["compile_seconds"] if engine is None else max(t["compile_seconds"], engine["compile_seconds"])
    other = max(0.0, wall - compile_s - t["train_seconds"])
    per = wall / t["evaluations"] if t["evaluations"] else math.nan
    counts = ""
    if engine is not None:
        notes = [f"{engine['compiles']} compiles, {engine['cache_hits']} cache hits"]
        if engine.get("fast_compiles"):
            notes.append(f"{engine['fast_compiles']} of the compiles fast-tier")
        if engine.get("disk_hits"):
            notes.append(f"{engine['disk_hits']} of the compiles read from the disk cache")
        if engine.get("background_compiles"):
            notes.append(
                f"{engine['background_compiles']} compiled ahead in {engine['background_compile_seconds']:.0f} s "
                "while members trained"
            )
        counts = f" ({'; '.join(notes)})"
    long = f" ({format_duration(wall)})" if wall >= 60 else ""
    return (
        f"wall {wall:.0f} s{long} = compile {compile_s:.0f} s{counts} + train "
        f"{t['train_seconds']:.0f} s + other {other:.0f} s; {t['evaluations']} candidate evaluations, "
        f"{'?' if math.isnan(per) else f'{per:.1f}'} s each"
        + (
            f"; {t['train_examples']:,} training examples in {format_epochs(t['candidate_epochs'])} candidate epochs"
            if t.get("train_examples")
            else ""
        )
    )


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as the lines ``fit`` prints at its end.

    Example:
        >>> from naivega_jax.autofit import format_summary
        >>> t = {"wall_seconds": 10.0, "compile_seconds": 4.0, "train_seconds": 5.0, "evaluations": 4}
        >>> s = {"out_dir": "runs/x", "generation": 1, "stopped": "max_generations", "session": t, "totals": t,
        ...      "engine": {"compiles": 4, "cache_hits": 0, "compile_seconds": 4.5}, "best": None,
        ...      "files": {"checkpoint": None, "log": "runs/x/run.log", "summary": "runs/x/summary.json"}}
        >>> print(format_summary(s))  # doctest: +NORMALIZE_WHITESPACE
        Summary of runs/x
          generations  1 (stopped: max_generations)
          best         no candidate was scored
          time         wall 10 s = compile 4 s (4 compiles, 0 cache hits) + train 5 s + other 0 s; 4 candidate
                       evaluations, 2.5 s each
          files        log runs/x/run.log, summary runs/x/summary.json
    """
    lines = [f"Summary of {summary['out_dir']}"]
    lines.append(_entry("generations", f"{summary['generation']} (stopped: {summary['stopped']})"))
    best = summary["best"]
    if best is None:
        lines.append(_entry("best", "no candidate was scored"))
    else:
        text = f"validation fitness {best['fitness']:.4f}" + _metric_text(best)
        text += (
            f"; {best['nparams']:,} parameters, {best['vertices']} vertices, {best['optimiser']}, "
            f"batch size {best['batch_size']}"
        )
        lines.append(_entry("best", text))
    screen = summary.get("screen")
    if screen is not None:
        text = f"{screen['members']} members trained, the best {screen['kept']} went on"
        origin = screen.get("best_from") or {}
        if origin.get("rank") is not None:
            text += f"; the best descends from {origin['name']}, the screen's number {origin['rank']}"
        lines.append(_entry("screen", text))
    lines.append(_entry("time", _time_line(summary["session"], summary["engine"])))
    if summary["totals"]["wall_seconds"] > summary["session"]["wall_seconds"]:
        lines.append(_entry("whole run", _time_line(summary["totals"], None)))
    files = summary["files"]
    text = f"log {files['log']}, summary {files['summary']}"
    if best is not None:
        text = (
            f"best model {files['graph']} (ng.load_graph), lineage {files['lineage']}, picture {files['picture']}, "
            f"checkpoint {files['checkpoint']}, " + text
        )
    lines.append(_entry("files", text))
    return "\n".join(lines)


def _metric_text(best: dict[str, Any]) -> str:
    if "validation_accuracy" in best:
        text = f" (accuracy {best['validation_accuracy']:.4f})"
        if best["test_accuracy"] is not None:
            text += f", test accuracy {best['test_accuracy']:.4f} on {best['test_examples']} examples"
        return text
    text = ""
    if best.get("validation_mse") is not None:
        text = (
            f" = 1 / (1 + MSE {best['validation_mse']:.4g} / {best['validation_baseline_mse']:.4g}, the validation "
            "MSE of predicting the training mean)"
        )
    if best.get("test_mse") is not None:
        text += (
            f", test MSE {best['test_mse']:.4g} on {best['test_examples']} examples (predicting the training mean: "
            f"{best['test_baseline_mse']:.4g})"
        )
    return text


def _entry(label: str, text: str) -> str:
    return textwrap.fill(
        text,
        width=110,
        initial_indent=f"  {label:<13}",
        subsequent_indent=" " * 15,
        break_long_words=False,
        break_on_hyphens=False,
    )
