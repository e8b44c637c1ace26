"""The ``naivega`` command: fit, resume, plot, export and evaluate searches from the shell.

naivega fit [--dataset mnist1d|digits|fashion-mnist|mnist|cifar10|FILE.npz] [--data-path DIR] [--out DIR]
            [--generations N] [--population N] [--time-budget 10m] [--seed S] [--epochs N] [--subset N] [--quiet]
naivega resume DIR [--generations N] [--time-budget 10m]
naivega plot DIR
naivega export DIR --out PATH
naivega evaluate DIR [--dataset NAME] [--data-path DIR] [--top K]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any

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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _load(dataset: str, data_path: str | None):
    from .data import datasets

    return datasets.load(dataset, path=data_path)


def _default_out(dataset: str) -> str:
    return str(Path("runs") / Path(dataset).stem.replace(".", "_"))


def _run_info(run_dir: Path) -> dict[str, Any]:
    run_file = run_dir / "run.json"
    if not run_file.is_file():
        raise SystemExit(f"naivega: {str(run_dir)!r} is not a naivega run directory (no run.json)")
    return json.loads(run_file.read_text())


def _fit(args: argparse.Namespace, resume_info: dict[str, Any] | None = None) -> int:
    import jax

    from .autofit import default_epochs, fit
    from .autofit._data import VALIDATION_SPLIT
    from .plot import PlotFitness, ScatterBatchSize, ScatterOpt, ScatterPop

    out = Path(args.out or _default_out(args.dataset))
    if resume_info is None:
        cli = {
            "dataset": args.dataset,
            "data_path": args.data_path,
            "population": args.population,
            "seed": args.seed,
            "epochs": args.epochs,
            "subset": args.subset,
        }
    else:
        cli = resume_info
    x_tr, y_tr, x_te, y_te = _load(cli["dataset"], cli["data_path"])
    subset = cli.get("subset")
    if subset is not None:
        if subset > x_tr.shape[0]:
            raise SystemExit(
                f"naivega: --subset {subset} exceeds the {x_tr.shape[0]} training examples of the data set"
            )
        x_tr, y_tr = x_tr[:subset], y_tr[:subset]
    if cli["epochs"] is None:
        cli = {**cli, "epochs": default_epochs(x_tr.shape[0] - math.ceil(VALIDATION_SPLIT * x_tr.shape[0]))}
    print(
        f"naivega fit: {cli['dataset']}, {x_tr.shape[0]} examples"
        + (f" (the first {subset})" if subset is not None else "")
        + f" and {x_te.shape[0]} test examples",
        file=sys.stderr,
        flush=True,
    )
    callbacks = [cls(out / "plots") for cls in (PlotFitness, ScatterPop, ScatterOpt, ScatterBatchSize)]
    executor = None
    if args.executor != "local":
        from .distributed import make_executor

        executor = make_executor(
            args.executor,
            ray_address=args.ray_address,
            num_workers=args.workers,
            num_gpus_per_task=args.ray_gpus_per_task,
        )
    fit(
        x_tr,
        y_tr,
        key=jax.random.key(cli["seed"]),
        out_dir=out,
        population_size=cli["population"],
        max_generations=args.generations,
        time_budget=args.time_budget,
        callbacks=callbacks,
        epochs_per_generation=cli["epochs"],
        progress=not args.quiet,
        run_info={"cli": cli},
        executor=executor,
        executor_chunk=args.workers,
        test_data=(x_te, y_te),
    )
    if hasattr(executor, "close"):
        executor.close()  # Ray actors hold their CPUs and GPUs until closed
    best = json.loads((out / "summary.json").read_text())["best"]
    if best is None:
        print(f"no candidate was scored yet; resume with `naivega resume {out}`", flush=True)
    else:
        print(
            f"best: validation fitness {best['fitness']:.4f}, test accuracy {best['test_accuracy']:.4f}, "
            f"{best['nparams']} parameters; saved in {out / 'best'}",
            flush=True,
        )
    return 0


def _resume(args: argparse.Namespace) -> int:
    run = Path(args.dir)
    info = _run_info(run).get("cli")
    if not info:
        raise SystemExit(f"naivega: the run in {str(run)!r} was not started by `naivega fit`; resume it from Python")
    args.dataset, args.out = info["dataset"], str(run)
    return _fit(args, resume_info=info)


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    paths = plot_run(Path(args.dir) / "plots")
    for p in paths:
        print(p)
    return 0


def _best(run: Path):
    from .io import load_population

    pop = load_population(run)
    return pop, pop.best()


def _export(args: argparse.Namespace) -> int:
    from .graph import save_graph

    _, best = _best(Path(args.dir))
    path = save_graph(args.out, best.graph)
    print(f"exported the best graph (fitness {best.fitness:.4f}) to {path}; load it with ng.load_graph")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .train import evaluate_accuracy

    run = Path(args.dir)
    info = _run_info(run)
    dataset = args.dataset or (info.get("cli") or {}).get("dataset")
    if dataset is None:
        raise SystemExit("naivega evaluate: --dataset is needed for runs not started by `naivega fit`")
    data_path = args.data_path or (info.get("cli") or {}).get("data_path")
    _, _, x_te, y_te = _load(dataset, data_path)
    if x_te.ndim == 2:
        x_te = x_te[..., None]
    classes = np.asarray(info["classes"])
    y_codes = np.searchsorted(classes, y_te)
    pop, _ = _best(run)
    ranked = sorted((c for c in pop if c.fitness is not None), key=lambda c: c.fitness, reverse=True)
    for i, c in enumerate(ranked[: args.top]):
        acc = evaluate_accuracy(c.graph, x_te, y_codes)
        print(f"{i + 1}. fitness {c.fitness:.4f}  test accuracy {acc:.4f}  ({len(y_te)} test examples)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``naivega`` command."""
    parser = argparse.ArgumentParser(prog="naivega", description="Neural architecture search by genetic algorithm.")
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p: argparse.ArgumentParser, resume: bool) -> None:
        p.add_argument(
            "--generations",
            type=_positive_int,
            default=6,
            help="stop after this generation (6)",
        )
        p.add_argument(
            "--time-budget",
            type=parse_duration,
            default=None,
            help="stop cleanly after e.g. 10m",
        )
        p.add_argument("--quiet", action="store_true", help="no per-candidate progress lines")
        p.add_argument(
            "--executor",
            choices=("local", "devices", "ray"),
            default="local",
            help="where candidates are evaluated: this process (default), every local device, or Ray",
        )
        p.add_argument(
            "--ray-address",
            default=None,
            help="Ray cluster to join (e.g. auto); default: a local Ray",
        )
        p.add_argument(
            "--ray-gpus-per-task",
            type=float,
            default=0.0,
            help="GPUs each Ray worker holds (1, or 0.5 to share one); workers holding none compute on CPU",
        )
        p.add_argument(
            "--workers",
            type=_positive_int,
            default=None,
            help="devices or Ray CPUs to use; also how many candidates are evaluated between time checks",
        )
        if not resume:
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
                type=_positive_int,
                default=8,
                help="population size (8)",
            )
            p.add_argument("--seed", type=int, default=0, help="random seed (0)")
            p.add_argument(
                "--epochs",
                type=_positive_int,
                default=None,
                help="training epochs per generation (default: about 18,000 examples, 1 to 10 epochs)",
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
    p.add_argument("--out", required=True)
    p.set_defaults(func=_export)
    p = sub.add_parser("evaluate", help="test accuracy of a run's best candidates")
    p.add_argument("dir")
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-path", default=None)
    p.add_argument("--top", type=_positive_int, default=3)
    p.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``naivega`` command."""
    from .autofit import ProgressHandler

    args = build_parser().parse_args(argv)
    handler = ProgressHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
