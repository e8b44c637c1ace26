"""The ``naivega`` command: fit, resume, plot, export and evaluate searches from the shell.

naivega fit [--dataset mnist1d|digits|fashion-mnist|mnist|cifar10|FILE.npz] [--data-path DIR] [--out DIR]
            [--generations N] [--population N] [--time-budget 10m] [--seed S] [--epochs N] [--subset N] [--quiet]
            [--strategy evolution|random] [--budget EXAMPLES] [--final-training SHARE] [--final-candidates K]
            [--screening N] [--anneal]
            [--flatten-head] [--no-conventional-cnn] [--task classification|regression] [--tensorboard]
naivega resume DIR [--generations N] [--time-budget 10m] [--epochs N] [--executor ...] [--[no-]tensorboard]
naivega plot DIR
naivega export DIR --out PATH [--force]
naivega evaluate DIR [--dataset NAME] [--data-path DIR] [--top K]

A user error (bad option, data or path) prints one line ``naivega: error: ...`` and exits with status 2, without a
traceback (set ``NAIVEGA_DEBUG=1`` to see it). SIGINT (Ctrl-C) and SIGTERM stop a search cleanly: the members
scored so far are checkpointed, the summary is written, and the exit status is 128 + the signal's number; a second
signal aborts at once. ``naivega resume DIR`` continues the run's own plan (generations, time budget, epochs,
executor, TensorBoard events) from its run.json; options given to ``resume`` replace those and are recorded there.

``--task regression`` fits real-valued targets: ``--dataset FILE.npz`` whose ``y_train`` and ``y_test`` are float
``(n,)`` or ``(n, T)`` (``ng.autofit.fit(..., task="regression")``); the summary and ``evaluate`` give test MSEs.
``--tensorboard`` writes TensorBoard events (``ng.TensorBoard``) under ``RUN/tensorboard``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from ._errors import NaiveGAError
from .autofit import install_stop_handlers, restore_handlers

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"``.

    Example:
        >>> from naivega_jax.cli import parse_duration
        >>> parse_duration("10m"), parse_duration("1.5h"), parse_duration("45")
        (600.0, 5400.0, 45.0)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"time budget must be a positive number of seconds or a duration like 90s, 10m, 1.5h; got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


class CliError(Exception):
    """A user error of the command line: printed as one line ``naivega: error: ...``, exit status 2."""


#: the largest seed plus one: ``jax.random.key`` keeps 32 bits, so larger seeds would repeat smaller ones
SEED_LIMIT = 2**32


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 (none) or a share between 0 and 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {SEED_LIMIT - 1}, got {text!r}")
    return value


def _load(dataset: str, data_path: str | None, task: str = "classification"):
    from .data import datasets

    if task == "regression":
        return _load_targets(dataset, data_path)
    try:
        return datasets.load(dataset, path=data_path)
    except ValueError as e:
        if "labels must be whole numbers" in str(e):
            raise CliError(f"{e}; for real-valued targets use --task regression") from None
        raise


#: the npz arrays of a data set, as ``ng.datasets.load`` reads them
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _load_targets(dataset: str, data_path: str | None):
    """A regression data set: an npz with float targets. ``x`` as ``ng.datasets.load`` reads an npz (uint8 divided
    by 255, a 3-D ``x`` one-channel images unless ``layout="sequences"``, then 2-D ``x`` gains a channel axis);
    ``y`` as it is, checked by ``fit``."""
    import numpy as np

    if dataset.lower().endswith(".npz"):
        file = Path(dataset)
    elif dataset == "npz" and data_path:
        file = Path(data_path)
    else:
        raise CliError(
            f"--task regression needs --dataset FILE.npz with float targets y_train and y_test; {dataset!r} is a "
            "classification data set"
        )
    file = file.expanduser()
    if not file.is_file():
        raise CliError(f"--dataset {str(file)!r}: no such file")
    try:
        with np.load(file, allow_pickle=False) as f:
            missing = [k for k in _NPZ_KEYS if k not in f.files]
            if missing:
                raise CliError(f"{file}: missing arrays {missing}; an npz data set needs {list(_NPZ_KEYS)}")
            x_tr, y_tr, x_te, y_te = (f[k] for k in _NPZ_KEYS)
            layout = str(f["layout"]) if "layout" in f.files else "images"
    except (OSError, EOFError, ValueError, AttributeError) as e:
        raise CliError(f"{file}: not a readable .npz archive of arrays ({e})") from None
    xs = []
    for x in (x_tr, x_te):
        if x.ndim == (2 if layout == "sequences" else 3):
            x = x[..., None]
        xs.append(x / np.float32(255.0) if x.dtype == np.uint8 else x)
    return xs[0], y_tr, xs[1], y_te


def _default_out(dataset: str) -> str:
    return str(Path("runs") / Path(dataset).stem.replace(".", "_"))


def _run_info(run_dir: Path) -> dict[str, Any]:
    run_file = run_dir / "run.json"
    if not run_file.is_file():
        raise CliError(f"{str(run_dir)!r} is not a naivega run directory (no run.json)")
    try:
        return json.loads(run_file.read_text())
    except ValueError as e:
        raise CliError(f"the run.json of {str(run_dir)!r} is unreadable ({e})") from None


#: the options of a run's plan: stored in run.json by ``fit``, continued by ``resume`` unless given again
PLAN = {
    "generations": 6,
    "time_budget": None,
    "final_training": None,
    "final_candidates": None,
    "executor": "local",
    "ray_address": None,
    "ray_gpus_per_task": 0.0,
    "workers": None,
    "tensorboard": False,
}


def _check_out(out: Path) -> None:
    """A usable run directory path, checked before any work: not a file, and writable where it will be made."""
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {str(out)!r} is a file; give a directory for the run")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CliError(f"--out {str(out)!r} cannot be made: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CliError(f"--out {str(out)!r} is not writable (no write permission on {str(existing)!r})")


def _check_executor(plan: dict[str, Any]) -> None:
    if plan["executor"] == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise CliError("--executor ray needs Ray, which is not installed: pip install 'naivega-jax[ray]'") from None


def _tensorboard(out: Path) -> list[Any]:
    """``[ng.TensorBoard(out / "tensorboard")]``, built before any work: without the tensorboard package it is a
    user error, said in one line."""
    from .plot import TensorBoard

    try:
        return [TensorBoard(out / "tensorboard")]
    except ImportError as e:
        raise CliError(f"--tensorboard: {e}") from None


def _nout(y: Any, task: str) -> int:
    import numpy as np

    if task == "classification":
        return int(np.unique(np.asarray(y)).size)
    return 1 if np.ndim(y) == 1 else int(np.shape(y)[1])


def _space(cli: dict[str, Any], x: Any, y: Any, task: str) -> Any:
    """The space ``--flatten-head`` asks for (``default_space(..., flatten_head=True)``), or None: ``fit``'s own."""
    if not cli.get("flatten_head"):
        return None
    from .autofit import default_space

    if x.ndim < 3:
        raise CliError(
            f"--flatten-head is for images and sequences; these examples are vectors of shape {tuple(x.shape[1:])}, "
            "searched in the tabular space, which has no feature map to flatten"
        )
    return default_space(tuple(int(s) for s in x.shape[1:]), _nout(y, task), task=task, flatten_head=True)


def _initial_members(cli: dict[str, Any], x: Any, y: Any, task: str) -> Any:
    """``initial_members`` for ``fit``: none with ``--no-conventional-cnn``; with ``--flatten-head`` (a space given)
    the default space's own (``default_members``); else None, ``fit``'s default."""
    if cli.get("no_conventional_cnn"):
        return ()
    if not cli.get("flatten_head"):
        return None
    from .autofit import default_members

    return default_members(tuple(int(s) for s in x.shape[1:]), _nout(y, task), task=task)


def _fit(args: argparse.Namespace, resume_info: dict[str, Any] | None = None) -> int:
    import jax

    from .autofit import fit, random_search, search_budget, training_size
    from .plot import PlotFitness, ScatterBatchSize, ScatterOpt, ScatterPop

    out = Path(args.out or _default_out(args.dataset))
    _check_out(out)
    if resume_info is None:
        cli = {
            "dataset": args.dataset,
            "data_path": args.data_path,
            "population": args.population,
            "seed": args.seed,
            "epochs": args.epochs,
            "subset": args.subset,
            "strategy": args.strategy,
            "budget": args.budget,
            "task": args.task,
            "screening": args.screening,
            "flatten_head": args.flatten_head,
            "no_conventional_cnn": args.no_conventional_cnn,
            "anneal": args.anneal,
            **{name: getattr(args, name) for name in PLAN},
        }
    else:
        given = {name: getattr(args, name) for name in (*PLAN, "epochs") if getattr(args, name) is not None}
        cli = {**PLAN, **resume_info, **given}
    _check_executor(cli)
    random = cli.get("strategy") == "random"
    if random and cli.get("final_training"):
        raise CliError("--final-training is for --strategy evolution; random search trains every member alike")
    if random and cli.get("screening") is not None:
        raise CliError("--screening is for --strategy evolution; random search trains every member alike")
    if random and cli.get("final_candidates") is not None:
        raise CliError("--final-candidates is for --strategy evolution; random search has no final phase")
    if (cli.get("final_candidates") or 1) > 1 and cli.get("time_budget") is None:
        raise CliError(
            f"--final-candidates {cli['final_candidates']} races members for equal time in the final phase; "
            "it needs --time-budget"
        )
    task = cli.get("task") or "classification"
    tensorboard = _tensorboard(out) if cli.get("tensorboard") else []
    x_tr, y_tr, x_te, y_te = _load(cli["dataset"], cli["data_path"], task)
    subset = cli.get("subset")
    if subset is not None:
        if subset > x_tr.shape[0]:
            raise CliError(f"--subset {subset} exceeds the {x_tr.shape[0]} training examples of the data set")
        x_tr, y_tr = x_tr[:subset], y_tr[:subset]
    n_train = training_size(x_tr.shape[0])
    # epochs None (not given): fit's default, whole epochs or parts of large data (run.json keeps None, so a resumed
    # run goes on with fit's default as it started)
    if random and cli.get("budget") is None:
        cli = {**cli, "budget": search_budget(n_train, cli["population"], cli["generations"], cli["epochs"])}
    print(
        f"naivega fit: {cli['dataset']}, {x_tr.shape[0]} examples"
        + (f" (the first {subset})" if subset is not None else "")
        + f" and {x_te.shape[0]} test examples",
        file=sys.stderr,
        flush=True,
    )
    callbacks = [cls(out / "plots") for cls in (PlotFitness, ScatterPop, ScatterOpt, ScatterBatchSize)]
    callbacks += tensorboard
    executor = None
    if cli["executor"] != "local":
        from .distributed import make_executor

        executor = make_executor(
            cli["executor"],
            ray_address=cli["ray_address"],
            num_workers=cli["workers"],
            num_gpus_per_task=cli["ray_gpus_per_task"],
        )
    common = dict(
        out_dir=out,
        space=_space(cli, x_tr, y_tr, task),
        initial_members=_initial_members(cli, x_tr, y_tr, task),
        time_budget=cli["time_budget"],
        callbacks=callbacks,
        progress=not args.quiet,
        run_info={"cli": cli, "command": ["naivega", *sys.argv[1:]]},
        executor=executor,
        executor_chunk=cli["workers"],
        test_data=(x_te, y_te),
        task=task,
        anneal_last=True if cli.get("anneal") else None,
    )
    try:
        if random:
            population = random_search(
                jax.random.key(cli["seed"]), x_tr, y_tr, members=cli["population"], budget=cli["budget"], **common
            )
        else:
            population = fit(
                x_tr,
                y_tr,
                key=jax.random.key(cli["seed"]),
                population_size=cli["population"],
                max_generations=cli["generations"],
                epochs_per_generation=cli["epochs"],
                final_training=cli.get("final_training"),
                final_candidates=cli.get("final_candidates"),
                screening=cli.get("screening"),
                **common,
            )
    finally:
        if executor is not None and hasattr(executor, "close"):
            executor.close()  # Ray actors hold their CPUs and GPUs until closed
        for cb in callbacks:
            if hasattr(cb, "close"):
                cb.close()
    summary = population.info["summary"]
    best = summary["best"]
    if best is None:
        print(f"no candidate was scored yet; resume with `naivega resume {out}`", flush=True)
    else:
        if task == "regression":
            test = f"test MSE {best['test_mse']:.4f} (predicting the training mean: {best['test_baseline_mse']:.4f})"
        else:
            test = f"test accuracy {best['test_accuracy']:.4f}"
        print(
            f"best: validation fitness {best['fitness']:.4f}, {test}, {best['nparams']} parameters; saved in "
            f"{out / 'best'}",
            flush=True,
        )
    stopped = summary.get("stopped")
    if stopped in ("SIGINT", "SIGTERM"):
        print(f"stopped by {stopped}; continue with `naivega resume {out}`", flush=True)
        return 128 + signal.Signals[stopped].value
    return 0


def _resume(args: argparse.Namespace) -> int:
    run = Path(args.dir)
    info = _run_info(run).get("cli")
    if not info:
        raise CliError(f"the run in {str(run)!r} was not started by `naivega fit`; resume it from Python")
    args.dataset, args.out = info["dataset"], str(run)
    return _fit(args, resume_info=info)


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    paths = plot_run(Path(args.dir) / "plots")
    for p in paths:
        print(p)
    return 0


def _best(run: Path):
    """The run's population and best member: the one its final phase trained, if it had one, else the fittest."""
    from .autofit import run_rank
    from .io import load_population

    pop = load_population(run)
    scored = [c for c in pop if c.fitness is not None]
    if not scored:
        raise CliError(f"the checkpoint of {str(run)!r} has no scored candidate")
    return pop, max(scored, key=run_rank)


def _export(args: argparse.Namespace) -> int:
    from .graph import save_graph

    _, best = _best(Path(args.dir))
    path = save_graph(args.out, best.graph, overwrite=args.force)
    print(f"exported the best graph (fitness {best.fitness:.4f}) to {path}; load it with ng.load_graph")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .autofit import encode_known_labels, run_rank, squared_error
    from .train import ensure_default_compilation_cache, evaluate_accuracy, evaluate_loss

    ensure_default_compilation_cache()  # the command line is the application: it uses the disk cache as fit does

    run = Path(args.dir)
    info = _run_info(run)
    task = info.get("task") or "classification"
    dataset = args.dataset or (info.get("cli") or {}).get("dataset")
    if dataset is None:
        raise CliError("--dataset is needed to evaluate a run not started by `naivega fit`")
    data_path = args.data_path or (info.get("cli") or {}).get("data_path")
    _, _, x_te, y_te = _load(dataset, data_path, task)
    in_shape = tuple(info.get("in_shape") or x_te.shape[1:])
    if x_te.ndim == 2 and len(in_shape) == 2:
        x_te = x_te[..., None]  # a run started when vectors were searched as sequences (F, 1)
    if tuple(x_te.shape[1:]) != in_shape:
        raise CliError(
            f"the test examples of {dataset!r} have shape {tuple(x_te.shape[1:])}, but the run was trained on "
            f"{in_shape}" + (" (save sequences in an npz with layout='sequences')" if len(in_shape) == 2 else "")
        )
    if task == "regression":
        y_te = np.asarray(y_te, np.float32)
        if y_te.ndim not in (1, 2) or y_te.shape[0] != x_te.shape[0]:
            raise CliError(f"the test targets of {dataset!r} have shape {y_te.shape}; expected ({x_te.shape[0]}, T)")
        y_te = y_te.reshape(x_te.shape[0], -1)

        def measure(graph):
            return f"test MSE {evaluate_loss(graph, x_te, y_te, squared_error):.4f}"
    else:
        y_codes = encode_known_labels(y_te, np.asarray(info["classes"]), where=f"the test labels of {dataset!r}")

        def measure(graph):
            return f"test accuracy {evaluate_accuracy(graph, x_te, y_codes):.4f}"

    pop, _ = _best(run)
    ranked = sorted((c for c in pop if c.fitness is not None), key=run_rank, reverse=True)
    for i, c in enumerate(ranked[: args.top]):
        final = ", final phase" if "final" in c.info else ""
        print(f"{i + 1}. fitness {c.fitness:.4f}{final}  {measure(c.graph)}  ({len(y_te)} test examples)")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line, ``naivega: error: ...`` (exit status 2), like every other user error."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split()[1:]  # the subcommand, if any
        where = f"{command[0]}: " if command else ""
        self.exit(2, f"naivega: error: {where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``naivega`` command."""
    parser = _Parser(prog="naivega", description="Neural architecture search by genetic algorithm.")
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p: argparse.ArgumentParser, resume: bool) -> None:
        # resume: None means "as the run's plan says" (run.json), so that only the options given replace it
        default = (lambda name: None) if resume else PLAN.get
        note = " (default: as the run was started)" if resume else ""
        p.add_argument(
            "--generations",
            type=_positive_int,
            default=default("generations"),
            help="stop after this generation (6)" + note,
        )
        p.add_argument(
            "--time-budget",
            type=parse_duration,
            default=default("time_budget"),
            help="stop cleanly after e.g. 10m (each session gets it)" + note,
        )
        p.add_argument(
            "--final-training",
            type=_share,
            default=default("final_training"),
            help="share of the budget (time, or training examples) kept for training the best candidate on at the "
            "end, e.g. 0.4; 0: none (default: half a --time-budget that stops the search, else none)" + note,
        )
        p.add_argument(
            "--final-candidates",
            type=_positive_int,
            default=default("final_candidates"),
            help="with --time-budget: the final phase races the K fittest candidates (those that trained faster than "
            "every fitter one) for 0.4 of its time, in equal shares, and the best by validation accuracy trains on "
            "(default: 2; 1: the fittest trains on)" + note,
        )
        p.add_argument(
            "--epochs",
            type=_positive_int,
            default=None,
            help="training epochs per generation (default: about 18,000 examples, 1 to 10 epochs)" + note,
        )
        p.add_argument("--quiet", action="store_true", help="no per-candidate progress lines")
        p.add_argument(
            "--executor",
            choices=("local", "devices", "ray"),
            default=default("executor"),
            help="where candidates are evaluated: this process (default), every local device, or Ray" + note,
        )
        p.add_argument(
            "--ray-address",
            default=default("ray_address"),
            help="Ray cluster to join (e.g. auto); default: a local Ray" + note,
        )
        p.add_argument(
            "--ray-gpus-per-task",
            type=float,
            default=default("ray_gpus_per_task"),
            help="GPUs each Ray worker holds (1, or 0.5 to share one); workers holding none compute on CPU" + note,
        )
        p.add_argument(
            "--workers",
            type=_positive_int,
            default=default("workers"),
            help="devices or Ray CPUs to use; also how many candidates are evaluated between time checks" + note,
        )
        p.add_argument(
            "--tensorboard",
            action=argparse.BooleanOptionalAction if resume else "store_true",
            default=default("tensorboard"),
            help="write TensorBoard events (fitness, parameters, the best architecture per generation) under "
            "RUN/tensorboard" + note,
        )
        if not resume:
            p.add_argument(
                "--task",
                choices=("classification", "regression"),
                default="classification",
                help="classification (default: y holds class labels) or regression (FILE.npz with float targets)",
            )
            p.add_argument(
                "--dataset",
                default="mnist1d",
                help="mnist1d (default), digits, fashion-mnist, mnist, "
                "cifar10 or a FILE.npz with x_train, y_train, x_test, y_test",
            )
            p.add_argument(
                "--data-path",
                default=None,
                help="directory (or file) holding the data set's files",
            )
            p.add_argument("--out", default=None, help="run directory (default runs/<dataset>)")
            p.add_argument(
                "--population",
                type=_int_at_least(3),
                default=8,
                help="population size, at least 3 (8)",
            )
            p.add_argument("--seed", type=_seed, default=0, help=f"random seed, 0 to {SEED_LIMIT - 1} (0)")
            p.add_argument(
                "--strategy",
                choices=("evolution", "random"),
                default="evolution",
                help="evolution (default), or the random-search baseline: --population members drawn from the same "
                "space, each trained on an equal share of --budget",
            )
            p.add_argument(
                "--budget",
                type=_positive_int,
                default=None,
                help="random search: training examples in all (default: what evolution with these --population, "
                "--generations and --epochs spends)",
            )
            p.add_argument(
                "--screening",
                type=_positive_int,
                default=None,
                help="the first generation draws N x --population members on 1/N of the examples each and keeps the "
                "best --population (default 3; 1: upstream's first generation); from --generations 12 on, without "
                "--time-budget, each trains generations // 6 times as long and the screen counts as the "
                "generations that costs",
            )
            p.add_argument(
                "--anneal",
                action="store_true",
                help="train the last generation (random search: its members) in learning-rate steps of 1, 0.3 and "
                "0.1 times the members' own (default: at their own rates, as upstream)",
            )
            p.add_argument(
                "--flatten-head",
                action="store_true",
                help="images and sequences: the space also holds the head of a hand-written CNN (the feature map "
                "flattened into 1-2 dense layers), besides the two pooled heads",
            )
            p.add_argument(
                "--no-conventional-cnn",
                action="store_true",
                help="images: draw every member of the first generation from the space (by default one of them is "
                "the CNN people write by hand, ng.autofit.conventional_space)",
            )
            p.add_argument(
                "--subset",
                type=_positive_int,
                default=None,
                help="use only the first N training examples (deterministic)",
            )

    p = sub.add_parser("fit", help="start (or continue) a search")
    run_options(p, resume=False)
    p.set_defaults(func=_fit)
    p = sub.add_parser("resume", help="continue a search from its run directory")
    p.add_argument("dir")
    run_options(p, resume=True)
    p.set_defaults(func=_resume)
    p = sub.add_parser("plot", help="redraw a run's plots")
    p.add_argument("dir")
    p.set_defaults(func=_plot)
    p = sub.add_parser("export", help="save the best graph of a run (load with ng.load_graph)")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="a new directory (or an empty one)")
    p.add_argument("--force", action="store_true", help="replace a graph exported there before")
    p.set_defaults(func=_export)
    p = sub.add_parser("evaluate", help="test accuracy of a run's best candidates")
    p.add_argument("dir")
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-path", default=None)
    p.add_argument("--top", type=_positive_int, default=3)
    p.set_defaults(func=_evaluate)
    return parser


#: errors a user causes (options, data, paths); anything else is a bug and keeps its traceback
_USER_ERRORS = (CliError, NaiveGAError, ValueError, OSError)


def _abort(signum: int, frame: Any) -> None:
    """Outside a search (loading data, writing the last lines) a signal ends the command at once: there is no work
    in progress to save, and a search's checkpoints are written atomically."""
    os.write(2, f"\n{signal.Signals(signum).name} received: aborting at once\n".encode())
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``naivega`` command; returns the exit status.

    A search (``fit``, ``resume``) stops cleanly on SIGINT or SIGTERM (``ng.autofit.fit``); anywhere else in the
    command, and for a second signal, the command ends at once with status 128 + the signal's number.
    """
    from .autofit import ProgressHandler

    parser = build_parser()
    args = parser.parse_args(argv)
    handler = ProgressHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    debug = os.environ.get("NAIVEGA_DEBUG", "") not in ("", "0")
    previous = install_stop_handlers(_abort)
    try:
        return args.func(args)
    except _USER_ERRORS as e:
        if debug:
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"naivega: error: {message}", file=sys.stderr, flush=True)
        return 2
    finally:
        restore_handlers(previous)


def entry() -> int:
    """The installed ``naivega`` command: ``main``, then the process ends; a signal while the interpreter shuts
    down (JAX's exit handlers run then) ends it at once instead of printing a traceback."""
    status = main()
    sys.stdout.flush()
    install_stop_handlers(_abort)
    return status


if __name__ == "__main__":
    raise SystemExit(entry())
