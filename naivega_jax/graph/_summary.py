"""A readable table of a graph."""

from __future__ import annotations

import numpy as np

from ._graph import Graph, nparams


def _op_text(op) -> str:
    fields = ", ".join(
        f"{k}={v!r}" for k, v in vars(op).items() if k not in ("nout", "shape") and not k.startswith("_")
    )
    return f"{type(op).__name__}({fields})" if fields else type(op).__name__


def summary(graph: Graph) -> str:
    """A table of every vertex: name, op, input sizes, output shape, parameter count and inputs.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> print(ng.summary(g).splitlines()[0].split())
        ['name', 'op', 'nin', 'out', 'shape', 'params', 'inputs']
    """
    rows = [("name", "op", "nin", "out shape", "params", "inputs")]
    for v in graph.spec.vertices:
        count = sum(int(np.prod(a.shape)) for a in graph.params.get(v.name, {}).values())
        rows.append(
            (
                v.name,
                _op_text(v.op),
                ",".join(map(str, graph.nin(v.name))) or "-",
                "x".join(map(str, v.shape)),
                str(count),
                ", ".join(v.inputs) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"{len(graph.spec.vertices)} vertices, {nparams(graph)} parameters")
    return "\n".join(lines)
