"""The ``Persist`` callback and the readable lineage of a candidate."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._files import write_text_atomic
from .._json import json_safe
from ..evolution import Candidate, Population
from ..graph import OverwriteError
from ..graph.internal import describe_path
from ._checkpoint import write_run_checkpoint


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
        "fitness": json_safe(candidate.fitness),
        "generation": candidate.generation,
        "batch_size": candidate.batch_size,
        "optimiser": opt.to_dict() if hasattr(opt, "to_dict") else json_safe(opt),
        "nparams": nparams(candidate.graph),
        "vertices": len(candidate.graph.vertex_names),
        "lineage": json_safe(list(candidate.lineage)),
        "spec": json.loads(to_json(candidate.graph.spec)),
    }


def save_lineage(path: str | os.PathLike, candidate: Candidate) -> Path:
    """Writes ``lineage_document(candidate)`` as indented JSON to the file ``path`` (atomically).

    An earlier file at ``path`` is replaced; a directory, a symbolic link or anything else that is not a plain file
    raises ``ng.OverwriteError`` before anything is written.

    Example:
        >>> import jax, json, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> path = ng.io.save_lineage(tempfile.mkdtemp() + "/lineage.json", ng.Candidate(g, fitness=0.5))
        >>> json.loads(path.read_text())["fitness"]
        0.5
    """
    path = Path(path)
    if os.path.lexists(path) and (path.is_symlink() or not path.is_file()):
        raise OverwriteError(
            f"save_lineage: refusing to replace {str(path)!r}: it is {describe_path(path)}; expected a lineage JSON "
            "file or a path that does not exist"
        )
    write_text_atomic(path, json.dumps(lineage_document(candidate), indent=1))
    return path
