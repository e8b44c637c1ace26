"""Per-generation plotting callbacks: NaiveGAflux ``PlotFitness``, ``ScatterPop``, ``ScatterOpt``, ``ScatterBatchSize``.

Each callback is called as ``cb(population)`` after a generation's fitness. It measures the population, stores one
record per generation in ``<rootdir>/<subdir>/<data file>.json``, and redraws its PNG beside that file. Records are
keyed by generation: constructing a callback on an existing run directory reloads them (a resumed run continues
its curves), and calling it again for a generation replaces that generation's record and drops any later ones
(they belong to a run that was abandoned after that generation).

Invalid fitness values (None, NaN, infinite, not a number, or any value of a candidate whose evaluation failed:
``info["failure"]`` set) are stored as None and left out of every statistic and every scatter; ``PlotFitness``
counts them per generation.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..graph import from_json, nparams, to_json
from ._data import (
    candidates,
    field,
    fitness_value,
    generation_of,
    learning_rate,
    load_records,
    optimiser_type,
    save_figure,
    save_records,
)

CMAP = "viridis"


class GenerationPlot:
    """Base of the plotting callbacks: per-generation records stored as JSON, reloaded on construction."""

    data_file: ClassVar[str] = "data.json"
    png_file: ClassVar[str] = "plot.png"
    figsize: ClassVar[tuple[float, float]] = (6.4, 4.8)

    def __init__(self, rootdir: str | os.PathLike, *, subdir: str | None = None):
        if not isinstance(rootdir, (str, os.PathLike)):
            raise TypeError(f"{type(self).__name__}: rootdir must be a path, got {type(rootdir).__name__}")
        self.rootdir = Path(rootdir)
        self.subdir = type(self).__name__ if subdir is None else str(subdir)
        self._records = load_records(self.data_path, type(self).__name__)

    @property
    def directory(self) -> Path:
        """Where the data and the PNG live: ``<rootdir>/<subdir>``."""
        return self.rootdir / self.subdir

    @property
    def data_path(self) -> Path:
        return self.directory / self.data_file

    @property
    def png_path(self) -> Path:
        return self.directory / self.png_file

    @property
    def data(self) -> list[dict[str, Any]]:
        """A copy of the stored records, one dict per generation, oldest first."""
        return [copy.deepcopy(self._records[g]) for g in sorted(self._records)]

    @property
    def generations(self) -> list[int]:
        return sorted(self._records)

    def __call__(self, population: Iterable[Any]) -> Path | None:
        """Records the (scored) population as its generation, saves the data, and redraws; returns the PNG path.

        Returns None, storing nothing, when the population holds nothing to plot (``PlotBestGraph`` without any
        valid fitness).
        """
        where = type(self).__name__
        cands = candidates(population, where)
        gen = generation_of(population, self._records)
        measured = self.measure(cands, where)
        if measured is None:
            return None
        record = {"generation": gen, **measured}
        self._records = {g: r for g, r in self._records.items() if g < gen}
        self._records[gen] = record
        save_records(self.data_path, where, self._records)
        return self.plot()

    def measure(self, cands: list[Any], where: str) -> dict[str, Any] | None:
        """This generation's record (JSON-friendly), or None to store nothing."""
        raise NotImplementedError

    def draw(self, ax: Any) -> None:
        """Draws the stored data on a matplotlib ``Axes``."""
        raise NotImplementedError

    def plot(self, path: str | os.PathLike | None = None) -> Path:
        """Draws the stored data to ``path`` (default ``png_path``) as PNG and returns the path."""
        fig = Figure(figsize=self.figsize)
        self.draw(fig.subplots())
        fig.tight_layout()
        return save_figure(fig, Path(path) if path is not None else self.png_path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.rootdir)!r}, subdir={self.subdir!r}, generations={len(self._records)})"


def _no_data(ax: Any, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, color="grey")


def _nan(values: Iterable[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


class PlotFitness(GenerationPlot):
    """Best and mean fitness per generation (NaiveGAflux ``PlotFitness``), drawn to ``PlotFitness/fitness.png``.

    Each generation's record is ``{"generation", "best", "mean", "size", "invalid"}``: the maximum and the mean of
    the valid fitness values, the population size, and how many candidates had an invalid fitness (None, NaN,
    infinite, or a failed evaluation: ``info["failure"]`` set), which are ignored. ``best`` and ``mean`` are None
    when no candidate is valid; the curve has a gap.

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> run = tempfile.mkdtemp()
        >>> cb = ng.PlotFitness(run)
        >>> cb([ng.Candidate(g, fitness=0.5), ng.Candidate(g, fitness=0.75), ng.Candidate(g)]).name
        'fitness.png'
        >>> ng.PlotFitness(run).data   # reloaded from PlotFitness/fitness.json
        [{'generation': 1, 'best': 0.75, 'mean': 0.625, 'size': 3, 'invalid': 1}]
        >>> shutil.rmtree(run)
    """

    data_file = "fitness.json"
    png_file = "fitness.png"

    def measure(self, cands, where):
        valid = [f for f in (fitness_value(c, where) for c in cands) if f is not None]
        return {
            "best": max(valid) if valid else None,
            "mean": math.fsum(valid) / len(valid) if valid else None,
            "size": len(cands),
            "invalid": len(cands) - len(valid),
        }

    def draw(self, ax):
        records = self.data
        if not records:
            return _no_data(ax, "Fitness")
        gens = [r["generation"] for r in records]
        ax.plot(gens, _nan(r["best"] for r in records), "o-", label="best")
        ax.plot(gens, _nan(r["mean"] for r in records), "s-", label="mean", markersize=4)
        invalid = sum(r["invalid"] for r in records)
        ax.set_title("Fitness" + (f" ({invalid} invalid values ignored)" if invalid else ""))
        ax.set_xlabel("Generation")
        ax.set_ylabel("Fitness")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")


def _log10_params(values: Iterable[int]) -> np.ndarray:
    return np.log10(np.maximum(np.asarray(list(values), dtype=float), 1.0))


def _scatter_by_params(ax: Any, records: list[dict[str, Any]], xkey: str, xfun, xlabel: str, title: str) -> None:
    """Fitness against ``xfun(record[xkey])`` coloured by log10 parameters; the latest generation stands out."""

    def points(rs):
        rows = [(x, f, n) for r in rs for x, f, n in zip(r[xkey], r["fitness"], r["nparams"]) if f is not None]
        xs, fs, ns = (np.array(c, dtype=float) for c in zip(*rows)) if rows else (np.zeros(0),) * 3
        return xfun(xs), fs, _log10_params(ns)

    ex, ef, en = points(records[:-1])
    lx, lf, ln = points(records[-1:])
    allc = np.concatenate([en, ln])
    vmin, vmax = (allc.min(), allc.max()) if allc.size else (0.0, 1.0)
    style = {"cmap": CMAP, "vmin": vmin, "vmax": vmax}
    if ex.size:
        ax.scatter(ex, ef, c=en, s=14, alpha=0.35, linewidths=0, label="earlier generations", **style)
    sc = ax.scatter(lx, lf, c=ln, s=48, edgecolors="black", linewidths=0.8, label="latest generation", **style)
    ax.figure.colorbar(sc, ax=ax, label="Number of parameters (log10)")
    ax.set_title(f"{title}, generation {records[-1]['generation']}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fitness")
    ax.grid(alpha=0.3)
    if ex.size:
        ax.legend(loc="best", fontsize="small")


class ScatterPop(GenerationPlot):
    """Number of vertices against fitness, coloured by log10 parameters (NaiveGAflux ``ScatterPop``).

    Each generation's record holds three lists, one entry per candidate: ``nvertices`` (input vertices included),
    ``fitness`` (None where invalid; such candidates are not drawn) and ``nparams``. The plot
    (``ScatterPop/scatterpop.png``) shows every stored generation, the latest one large with black edges.

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> run = tempfile.mkdtemp()
        >>> cb = ng.ScatterPop(run)
        >>> _ = cb([ng.Candidate(g, fitness=0.5), ng.Candidate(g, fitness=float("nan"))])
        >>> cb.data
        [{'generation': 1, 'nvertices': [2, 2], 'fitness': [0.5, None], 'nparams': [18, 18]}]
        >>> shutil.rmtree(run)
    """

    data_file = "nvfitnp.json"
    png_file = "scatterpop.png"

    def measure(self, cands, where):
        graphs = [field(c, "graph", where) for c in cands]
        return {
            "nvertices": [len(g.vertex_names) for g in graphs],
            "fitness": [fitness_value(c, where) for c in cands],
            "nparams": [nparams(g) for g in graphs],
        }

    def draw(self, ax):
        if not self._records:
            return _no_data(ax, "Vertices and fitness")
        _scatter_by_params(ax, self.data, "nvertices", lambda x: x, "Number of vertices", "Vertices and fitness")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


class ScatterBatchSize(GenerationPlot):
    """log2 of the training batch size against fitness, coloured by log10 parameters (``ScatterBatchSize``).

    Each generation's record holds the lists ``batch_size``, ``fitness`` (None where invalid) and ``nparams``, one
    entry per candidate. The plot is ``ScatterBatchSize/scatterbatchsize.png``.

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> run = tempfile.mkdtemp()
        >>> cb = ng.ScatterBatchSize(run)
        >>> _ = cb([ng.Candidate(g, batch_size=16, fitness=0.5), ng.Candidate(g, batch_size=64, fitness=0.25)])
        >>> cb.data[0]["batch_size"], cb.data[0]["fitness"]
        ([16, 64], [0.5, 0.25])
        >>> shutil.rmtree(run)
    """

    data_file = "bsfitnp.json"
    png_file = "scatterbatchsize.png"

    def measure(self, cands, where):
        return {
            "batch_size": [int(field(c, "batch_size", where)) for c in cands],
            "fitness": [fitness_value(c, where) for c in cands],
            "nparams": [nparams(field(c, "graph", where)) for c in cands],
        }

    def draw(self, ax):
        if not self._records:
            return _no_data(ax, "Batch size and fitness")
        _scatter_by_params(ax, self.data, "batch_size", np.log2, "Batch size (log2)", "Batch size and fitness")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


class ScatterOpt(GenerationPlot):
    """log10 learning rate against fitness, grouped by optimiser type (NaiveGAflux ``ScatterOpt``).

    Each generation's record holds the lists ``fitness`` (None where invalid), ``learning_rate`` (the spec's
    ``learning_rate``: for an ``OptimiserChain`` the product of its members', shielded ones included, as upstream;
    None without an optimiser spec) and ``optimiser``: the class name of the first chain element that is neither a
    ``ShieldedOpt`` (usually a population-wide learning-rate schedule) nor a ``WeightDecay`` (no learning rate),
    ``"default"`` for a candidate without a spec. Candidates without a valid fitness or learning rate are not
    drawn. The plot is ``ScatterOpt/scatteropt.png``.

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> chain = ng.OptimiserChain(ng.ShieldedOpt(ng.SGD(0.5)), ng.Momentum(0.01))
        >>> pop = ng.Population([ng.Candidate(g, optimiser=chain, fitness=0.5), ng.Candidate(g, fitness=0.25)])
        >>> run = tempfile.mkdtemp()
        >>> cb = ng.ScatterOpt(run)
        >>> _ = cb(pop)
        >>> cb.data[0]["learning_rate"], cb.data[0]["optimiser"]
        ([0.005, None], ['Momentum', 'default'])
        >>> shutil.rmtree(run)
    """

    data_file = "fitlropt.json"
    png_file = "scatteropt.png"

    def measure(self, cands, where):
        opts = [field(c, "optimiser", where) for c in cands]
        return {
            "fitness": [fitness_value(c, where) for c in cands],
            "learning_rate": [learning_rate(o) for o in opts],
            "optimiser": [optimiser_type(o) for o in opts],
        }

    def draw(self, ax):
        if not self._records:
            return _no_data(ax, "Learning rate and fitness")
        records = self.data
        types = sorted({t for r in records for t in r["optimiser"]})
        colours = {t: f"C{i % 10}" for i, t in enumerate(types)}
        latest = records[-1]["generation"]
        for r in records:
            now = r["generation"] == latest
            for t in types:
                rows = [
                    (lr, f)
                    for lr, f, o in zip(r["learning_rate"], r["fitness"], r["optimiser"])
                    if o == t and f is not None and lr is not None and lr > 0
                ]
                if not rows:
                    continue
                lrs, fs = np.array(rows, dtype=float).T
                style = {"s": 48, "edgecolors": "black", "linewidths": 0.8} if now else {"s": 14, "alpha": 0.3}
                ax.scatter(np.log10(lrs), fs, color=colours[t], label=t if now else None, **style)
        faded = " (faded: earlier ones)" if len(records) > 1 else ""
        ax.set_title(f"Learning rate and fitness, generation {latest}{faded}")
        ax.set_xlabel("Learning rate (log10)")
        ax.set_ylabel("Fitness")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(title="optimiser", loc="best", fontsize="small")


class PlotBestGraph(GenerationPlot):
    """A picture of each generation's best architecture (see ``plot_graph``), drawn to ``PlotBestGraph/best_graph.png``.

    Each generation's record is ``{"generation", "fitness", "nparams", "spec"}``, ``spec`` being the best
    candidate's graph spec as ``ng.to_json`` writes it (the first of equal best; no record when no fitness is valid).
    The picture shows the latest generation's best.

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> run = tempfile.mkdtemp()
        >>> cb = ng.plot.PlotBestGraph(run)
        >>> cb([ng.Candidate(g, fitness=0.5)]).name, cb.data[0]["nparams"]
        ('best_graph.png', 18)
        >>> ng.graph.from_json(cb.data[0]["spec"]) == g.spec
        True
        >>> shutil.rmtree(run)
    """

    data_file = "best_graph.json"
    png_file = "best_graph.png"

    def measure(self, cands, where):
        scored = [(f, i) for i, f in enumerate(fitness_value(c, where) for c in cands) if f is not None]
        if not scored:
            return None
        best = cands[max(scored, key=lambda t: (t[0], -t[1]))[1]]
        graph = field(best, "graph", where)
        return {"fitness": fitness_value(best, where), "nparams": nparams(graph), "spec": json.loads(to_json(graph))}

    def draw(self, ax):
        from ._graphplot import draw_graph

        if not self._records:
            return _no_data(ax, "Best architecture")
        r = self.data[-1]
        draw_graph(ax, from_json(r["spec"]))
        ax.set_title(f"Best of generation {r['generation']}: fitness {r['fitness']:.4g}, {r['nparams']} parameters")

    def plot(self, path=None):
        from ._graphplot import plot_graph

        if not self._records:
            return super().plot(path)
        r = self.data[-1]
        title = f"Best of generation {r['generation']}: fitness {r['fitness']:.4g}, {r['nparams']} parameters"
        return plot_graph(from_json(r["spec"]), Path(path) if path is not None else self.png_path, title=title)
