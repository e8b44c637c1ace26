"""The ``Persist`` callback and the readable lineage of a candidate."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..evolution import Candidate, Population
from ._checkpoint import _json_safe, write_run_checkpoint


class Persist:
    """Callback ``cb(population)`` writing the population as the run's newest checkpoint under ``out_dir``.

    ``ng.load_population(out_dir)`` reads it back. ``ng.autofit.fit`` checkpoints by itself (with the evolution key,
    for exact resume); use ``Persist`` in hand-written loops.

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> out = tempfile.mkdtemp()
        >>> ng.Persist(out)(ng.Population([ng.Candidate(g, fitness=1.0)], generation=2))
        >>> ng.load_population(out).generation
        2
    """

    def __init__(self, out_dir: str | os.PathLike, *, keep: int = 2):
        self.out_dir = Path(out_dir)
        self.keep = keep

    def __call__(self, population: Population) -> None:
        write_run_checkpoint(self.out_dir, population, keep=self.keep)

    def __repr__(self) -> str:
        return f"Persist({str(self.out_dir)!r})"


def lineage_document(candidate: Candidate) -> dict:
    """The candidate's whole history as a JSON-friendly dict (events oldest first, and its final state)."""
    from ..graph import nparams, to_json

    opt = candidate.optimiser
    return {
        "fitness": _json_safe(candidate.fitness),
        "generation": candidate.generation,
        "batch_size": candidate.batch_size,
        "optimiser": opt.to_dict() if hasattr(opt, "to_dict") else _json_safe(opt),
        "nparams": nparams(candidate.graph),
        "vertices": len(candidate.graph.vertex_names),
        "lineage": _json_safe(list(candidate.lineage)),
        "spec": json.loads(to_json(candidate.graph.spec)),
    }


def save_lineage(path: str | os.PathLike, candidate: Candidate) -> Path:
    """Writes ``lineage_document(candidate)`` as indented JSON to the file ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(lineage_document(candidate), indent=1))
    os.replace(tmp, path)
    return path
