"""A picture of an architecture: labelled boxes and arrows, one row per topological depth.

Layout (a small Sugiyama scheme): a vertex's depth is the length of the longest path to it from an input; each depth
is one row, top to bottom, so parallel branches sit side by side. An edge that skips rows passes through a narrow
placeholder in every row it crosses, so it is routed around the boxes instead of through them. Rows are ordered
by the mean position of each vertex's inputs (the barycentre heuristic) to keep crossings few.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from ..graph import Graph, GraphSpec
from ._data import save_figure

BOX_W, BOX_H, DUMMY_W, GAP, ROW = 2.8, 1.0, 0.5, 0.35, 1.9
INCH_PER_UNIT = 0.72
MAX_PIXELS = 30000
LABEL_CHARS = 30
SHORT = {"kernel_size": "k", "strides": "s", "dilation": "d", "window": "w", "padding": "pad", "use_bias": "bias"}
ALWAYS = ("kernel_size", "window", "kind")
COLOURS = {
    "Input": "#c7e9c0",
    "Dense": "#c6dbef",
    "Conv": "#fdd0a2",
    "BatchNorm": "#dadaeb",
    "MaxPool": "#fff3b0",
    "AvgPool": "#fff3b0",
    "GlobalPool": "#fff3b0",
    "Flatten": "#fff3b0",
    "Concat": "#fcc5c0",
    "Add": "#fcc5c0",
    "Dropout": "#e5e5e5",
    "Scale": "#e5e5e5",
}


def op_label(op: Any) -> str:
    """The op's type, its kernel or window, and the fields that differ from their defaults (the shape shows sizes)."""
    parts = []
    for f in dataclasses.fields(op) if dataclasses.is_dataclass(op) else ():
        if f.name in ("nout", "shape"):
            continue
        value = getattr(op, f.name)
        if isinstance(value, tuple) and value and all(v == value[0] for v in value) and f.name != "padding":
            value = value[0]
        if f.name not in ALWAYS and f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.name in ("activation", "kind"):
            parts.append(str(value))
        else:
            parts.append(f"{SHORT.get(f.name, f.name)}={value}")
    text = type(op).__name__ + (f"({', '.join(parts)})" if parts else "")
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _rows(spec: GraphSpec) -> tuple[dict[str, int], list[list[str]], dict[tuple[str, str], list[str]]]:
    """Depth per vertex, the rows (vertex and placeholder names), and each long edge's placeholders."""
    depth: dict[str, int] = {}
    for v in spec.vertices:
        depth[v.name] = 1 + max((depth[i] for i in v.inputs), default=-1)
    rows: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for v in spec.vertices:
        rows[depth[v.name]].append(v.name)
    via: dict[tuple[str, str], list[str]] = {}
    for v in spec.vertices:
        for i in dict.fromkeys(v.inputs):
            points = [f"\0{i}>{v.name}@{d}" for d in range(depth[i] + 1, depth[v.name])]
            via[(i, v.name)] = points
            for d, p in zip(range(depth[i] + 1, depth[v.name]), points):
                rows[d].append(p)
    return depth, rows, via


def layout(spec: GraphSpec) -> tuple[dict[str, tuple[float, float]], dict[tuple[str, str], list[str]], float]:
    """Centre ``(x, y)`` of every vertex and placeholder, the long edges' placeholders, and the widest row's width."""
    _, rows, via = _rows(spec)
    above: dict[str, list[str]] = {}
    for v in spec.vertices:
        for i in dict.fromkeys(v.inputs):
            chain = [i, *via[(i, v.name)], v.name]
            for a, b in itertools.pairwise(chain):
                above.setdefault(b, []).append(a)
    pos: dict[str, tuple[float, float]] = {}
    widest = 0.0
    for r, row in enumerate(rows):
        if r:
            centre = lambda n: sum(pos[a][0] for a in above[n]) / len(above[n])
            row.sort(key=centre)
        widths = [DUMMY_W if n.startswith("\0") else BOX_W for n in row]
        total = sum(widths) + GAP * (len(row) - 1)
        widest = max(widest, total)
        x = -total / 2
        for n, w in zip(row, widths):
            pos[n] = (x + w / 2, -r * ROW)
            x += w + GAP
    return pos, via, widest


def draw_graph(ax: Any, spec: GraphSpec) -> None:
    """Draws ``spec`` on a matplotlib ``Axes`` in data units (see ``layout``); the axes are turned off."""
    pos, via, widest = layout(spec)
    for v in spec.vertices:
        ins = list(dict.fromkeys(v.inputs))
        for k, i in enumerate(ins):
            x0, y0 = pos[i]
            x1, y1 = pos[v.name]
            offset = (k - (len(ins) - 1) / 2) * min(0.5, 0.8 * BOX_W / max(len(ins), 1))
            points = [(x0, y0 - BOX_H / 2)]
            for p in via[(i, v.name)]:
                points += [(pos[p][0], pos[p][1] + BOX_H / 2), (pos[p][0], pos[p][1] - BOX_H / 2)]
            points.append((x1 + offset, y1 + BOX_H / 2))
            codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1)
            ax.add_patch(
                FancyArrowPatch(
                    path=MplPath(points, codes), arrowstyle="-|>", mutation_scale=9, color="#555555", lw=0.9, zorder=1
                )
            )
    outputs = set(spec.outputs)
    for v in spec.vertices:
        x, y = pos[v.name]
        box = FancyBboxPatch(
            (x - BOX_W / 2, y - BOX_H / 2),
            BOX_W,
            BOX_H,
            boxstyle="round,pad=0,rounding_size=0.12",
            facecolor=COLOURS.get(type(v.op).__name__, "#f0f0f0"),
            edgecolor="black",
            lw=1.8 if v.name in outputs else 0.8,
            linestyle="--" if v.shield is not None else "-",
            zorder=2,
        )
        ax.add_patch(box)
        shape = "\u00d7".join(map(str, v.shape))
        ax.text(x, y + 0.26, v.name, ha="center", va="center", fontsize=7.5, weight="bold", zorder=3)
        ax.text(x, y, op_label(v.op), ha="center", va="center", fontsize=7, zorder=3)
        ax.text(x, y - 0.27, shape, ha="center", va="center", fontsize=7, color="#333333", zorder=3)
    nrows = 1 + round(-min(p[1] for p in pos.values()) / ROW)
    ax.set_xlim(-widest / 2 - 0.3, widest / 2 + 0.3)
    ax.set_ylim(-(nrows - 1) * ROW - BOX_H / 2 - 0.3, BOX_H / 2 + 0.3)
    ax.set_aspect("equal")
    ax.set_axis_off()


def plot_graph(graph: Graph | GraphSpec, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Writes a picture of an architecture to ``path`` as PNG and returns the path.

    Each vertex is a box with its name, its op (type and non-default settings) and its output shape; arrows run
    from inputs to consumers (several inputs of one vertex arrive left to right in argument order). Rows are
    topological depths, top to bottom; parallel branches sit side by side. Output vertices have a thick border,
    shielded vertices a dashed one. The figure grows with the graph.

    Args:
        graph: an ``ng.Graph`` or its ``GraphSpec`` (only the structure is drawn).
        path: the PNG file to write (parent directories are created); written atomically.
        title: an optional line above the picture.

    Example:
        >>> import jax, os, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> a = ng.vertex("a", ng.Dense(4, "relu"), inp)
        >>> b = ng.vertex("b", ng.Dense(4, "tanh"), inp)
        >>> out = ng.vertex("out", ng.Dense(3), ng.concat("cat", a, b))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=out)
        >>> p = ng.plot.plot_graph(g, os.path.join(tempfile.mkdtemp(), "graph.png"))
        >>> p.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
        True
    """
    spec = graph.spec if isinstance(graph, Graph) else graph
    if not isinstance(spec, GraphSpec):
        raise TypeError(f"plot_graph: graph must be an ng.Graph or ng.GraphSpec, got {type(graph).__name__}")
    _, _, widest = layout(spec)
    nrows = len(_rows(spec)[1])
    width = max(4.0, (widest + 0.6) * INCH_PER_UNIT)
    height = max(2.0, ((nrows - 1) * ROW + BOX_H + 0.6) * INCH_PER_UNIT + (0.4 if title else 0.0))
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1 - (0.4 / height if title else 0.0)))
    draw_graph(ax, spec)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.2 / height, va="center")
    return save_figure(fig, Path(path), dpi=min(110.0, MAX_PIXELS / max(width, height)))
