"""Combining callbacks (``MultiPlot``, ``CbAll``) and redrawing a whole run from its stored data (``plot_run``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ._callbacks import GenerationPlot, PlotBestGraph, PlotFitness, ScatterBatchSize, ScatterOpt, ScatterPop
from ._data import FORMAT, save_figure, write_atomic

CALLBACKS: dict[str, type[GenerationPlot]] = {
    cls.__name__: cls for cls in (PlotFitness, ScatterPop, ScatterOpt, ScatterBatchSize, PlotBestGraph)
}
LAYOUT_FILE = "layout.json"


class MultiPlot:
    """Several plotting callbacks drawn as subplots of one figure (NaiveGAflux ``MultiPlot``).

    Calling it calls every callback (each stores its data and writes its own PNG as usual), then writes the
    combined figure to ``path``. When every callback has the same ``rootdir``, ``path`` defaults to
    ``<rootdir>/MultiPlot/multiplot.png``, and the layout (which callbacks, which path) is kept in
    ``<rootdir>/MultiPlot/layout.json`` so that ``plot_run`` redraws the same figure.

    Args:
        *callbacks: plotting callbacks (``PlotFitness``, ``ScatterPop``, ``ScatterOpt``, ``ScatterBatchSize``, or
            anything with ``__call__(population)`` and ``draw(ax)``).
        path: where to write the combined PNG.
        init: draw the figure from the callbacks' stored data on construction (when they have any), as upstream.

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> run = tempfile.mkdtemp()
        >>> mp = ng.MultiPlot(ng.PlotFitness(run), ng.ScatterPop(run))
        >>> mp([ng.Candidate(g, fitness=0.5), ng.Candidate(g, fitness=0.25)]).relative_to(run).as_posix()
        'MultiPlot/multiplot.png'
        >>> shutil.rmtree(run)
    """

    def __init__(self, *callbacks: Any, path: str | os.PathLike | None = None, init: bool = True):
        if not callbacks:
            raise ValueError("MultiPlot: give at least one callback, e.g. MultiPlot(PlotFitness(dir), ScatterPop(dir))")
        for cb in callbacks:
            if not callable(cb) or not callable(getattr(cb, "draw", None)):
                raise TypeError(
                    f"MultiPlot: every callback needs __call__(population) and draw(ax) (PlotFitness, ScatterPop, "
                    f"ScatterOpt, ScatterBatchSize), got {cb!r}"
                )
        self.callbacks = tuple(callbacks)
        roots = {Path(cb.rootdir) for cb in callbacks if hasattr(cb, "rootdir")}
        self._root = roots.pop() if len(roots) == 1 and all(hasattr(cb, "rootdir") for cb in callbacks) else None
        if path is None:
            if self._root is None:
                raise ValueError("MultiPlot: give path=... when the callbacks do not share one rootdir")
            path = self._root / "MultiPlot" / "multiplot.png"
        self.path = Path(path)
        if init and any(getattr(cb, "generations", ()) for cb in self.callbacks):
            self.plot()

    def __call__(self, population: Iterable[Any]) -> Path:
        """Calls every callback with the population, then writes the combined figure; returns its path."""
        cands = population if hasattr(population, "generation") else list(population)
        for cb in self.callbacks:
            cb(cands)
        return self.plot()

    def plot(self, path: str | os.PathLike | None = None) -> Path:
        """Writes the combined figure from the callbacks' stored data (to ``path``, default ``self.path``)."""
        n = len(self.callbacks)
        ncols = min(n, 2)
        nrows = math.ceil(n / ncols)
        fig = Figure(figsize=(6.4 * ncols, 4.8 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for cb, ax in zip(self.callbacks, axes):
            cb.draw(ax)
        for ax in axes[n:]:
            ax.set_axis_off()
        fig.tight_layout()
        out = save_figure(fig, Path(path) if path is not None else self.path)
        if path is None:
            self._save_layout()
        return out

    def _save_layout(self) -> None:
        if self._root is None or not all(type(cb).__name__ in CALLBACKS for cb in self.callbacks):
            return
        try:
            where = self.path.resolve().relative_to(self._root.resolve()).as_posix()
        except ValueError:
            where = str(self.path.resolve())
        layout = {
            "format": FORMAT,
            "path": where,
            "callbacks": [{"type": type(cb).__name__, "subdir": cb.subdir} for cb in self.callbacks],
        }
        write_atomic(self._root / "MultiPlot" / LAYOUT_FILE, lambda f: f.write(json.dumps(layout, indent=1).encode()))

    def __repr__(self) -> str:
        return f"MultiPlot({', '.join(map(repr, self.callbacks))}, path={str(self.path)!r})"


class CbAll:
    """Calls several callbacks in turn with the same population (NaiveGAflux ``CbAll``).

    Args:
        *callbacks: any callables taking the population.

    Example:
        >>> import naivega_jax as ng
        >>> seen = []
        >>> cb = ng.CbAll(lambda pop: seen.append(len(pop)), lambda pop: seen.append(sum(pop)))
        >>> cb([1, 2, 3])
        >>> seen
        [3, 6]
    """

    def __init__(self, *callbacks: Callable[[Any], Any]):
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"CbAll: every callback must be callable with the population, got {cb!r}")
        self.callbacks = tuple(callbacks)

    def __call__(self, population: Iterable[Any]) -> None:
        for cb in self.callbacks:
            cb(population)

    def __repr__(self) -> str:
        return f"CbAll({', '.join(map(repr, self.callbacks))})"


def plot_run(rootdir: str | os.PathLike) -> list[Path]:
    """Redraws every PNG of a run from the data its plotting callbacks stored under ``rootdir``.

    Finds the data of ``PlotFitness``, ``ScatterPop``, ``ScatterOpt``, ``ScatterBatchSize`` and ``PlotBestGraph``
    in their default subdirectories, writes each callback's PNG, then every ``MultiPlot`` figure whose layout is
    stored in ``<rootdir>/MultiPlot/layout.json``. This is what ``naivega plot DIR`` runs.

    Returns:
        The paths of the PNG files written (empty when the directory holds no plot data).

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> run = tempfile.mkdtemp()
        >>> _ = ng.PlotFitness(run)([ng.Candidate(g, fitness=0.5)])
        >>> [p.relative_to(run).as_posix() for p in ng.plot.plot_run(run)]
        ['PlotFitness/fitness.png']
        >>> shutil.rmtree(run)
    """
    root = Path(rootdir)
    if not root.is_dir():
        raise ValueError(f"plot_run: rootdir {str(root)!r} is not a directory (expected a run's output directory)")
    written = []
    for name, cls in CALLBACKS.items():
        if (root / name / cls.data_file).is_file():
            written.append(cls(root).plot())
    layout_file = root / "MultiPlot" / LAYOUT_FILE
    if layout_file.is_file():
        try:
            layout = json.loads(layout_file.read_text())
            cbs = [CALLBACKS[c["type"]](root, subdir=c["subdir"]) for c in layout["callbacks"]]
            path = Path(layout["path"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"plot_run: cannot read the MultiPlot layout {str(layout_file)!r} ({e})") from None
        written.append(MultiPlot(*cbs, path=path if path.is_absolute() else root / path, init=False).plot())
    return written
