"""``TensorBoard``: a per-generation callback that writes a run's curves and best architecture as TensorBoard events."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..graph import nparams, summary
from ._data import candidates, field, fitness_value, generation_of


def _tensorboard() -> Any:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.text import metadata as text_metadata
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise ImportError(
            "ng.TensorBoard needs the tensorboard package: pip install 'naivega_jax[tensorboard]' "
            f"(or pip install tensorboard); importing it failed: {e}"
        ) from None
    return event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2, text_metadata, EventFileWriter


class TensorBoard:
    """Writes each generation to TensorBoard event files in ``logdir`` (``tensorboard --logdir <logdir>``).

    Called as ``cb(population)`` after a generation's fitness, like the other callbacks. At step = the generation
    it writes the scalars ``fitness/best`` and ``fitness/mean`` (over valid fitness values: None, NaN, infinite and
    failed evaluations are left out; both are skipped when none is valid), ``params/best`` (the best candidate's
    number of parameters) and ``population/size``, and the best architecture (``ng.summary`` of its graph) as the
    text ``architecture/best``. Events are flushed after every generation, so a running TensorBoard shows them at
    once. A resumed run appends a new event file to the same ``logdir``. Needs the ``tensorboard`` package
    (``pip install 'naivega_jax[tensorboard]'``).

    Example:
        >>> import jax, shutil, tempfile, naivega_jax as ng
        >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> logdir = tempfile.mkdtemp()
        >>> cb = ng.TensorBoard(logdir)
        >>> cb([ng.Candidate(g, fitness=0.5), ng.Candidate(g, fitness=0.75)])
        >>> cb.close()
        >>> events = EventAccumulator(logdir).Reload()
        >>> [(e.step, e.value) for e in events.Scalars("fitness/best")], events.Scalars("params/best")[0].value
        ([(1, 0.75)], 18.0)
        >>> shutil.rmtree(logdir)
    """

    def __init__(self, logdir: str | os.PathLike):
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"TensorBoard: logdir must be a path, got {type(logdir).__name__}: {logdir!r}")
        self.logdir = Path(logdir)
        self._pb = _tensorboard()  # fail at construction, not after the first generation's training
        self._writer: Any = None
        self._generations: list[int] = []

    def __call__(self, population: Iterable[Any]) -> None:
        """Writes the (scored) population's generation and flushes the events to disk."""
        where = type(self).__name__
        cands = candidates(population, where)
        gen = generation_of(population, self._generations)
        scored = [(f, i) for i, f in enumerate(fitness_value(c, where) for c in cands) if f is not None]
        values: dict[str, float] = {"population/size": float(len(cands))}
        text = "no valid fitness in this generation"
        if scored:
            fitness = [f for f, _ in scored]
            best_fitness, best_index = max(scored, key=lambda t: (t[0], -t[1]))
            graph = field(cands[best_index], "graph", where)
            values["fitness/best"] = best_fitness
            values["fitness/mean"] = math.fsum(fitness) / len(fitness)
            values["params/best"] = float(nparams(graph))
            # four spaces: TensorBoard renders text as markdown; a code block keeps the table's columns
            lines = [f"fitness {best_fitness:.6g}, {nparams(graph)} parameters", ""]
            text = "\n".join(lines + ["    " + line for line in summary(graph).splitlines()])
        self._write(gen, values, text)
        self._generations.append(gen)

    def _write(self, step: int, values: dict[str, float], text: str) -> None:
        event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2, text_metadata, writer_type = self._pb
        if self._writer is None:
            self.logdir.mkdir(parents=True, exist_ok=True)
            self._writer = writer_type(str(self.logdir))
        scalars = [summary_pb2.Summary.Value(tag=tag, simple_value=value) for tag, value in sorted(values.items())]
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[text.encode()], tensor_shape=tensor_shape_pb2.TensorShapeProto()
        )
        text_value = summary_pb2.Summary.Value(
            tag="architecture/best",
            metadata=text_metadata.create_summary_metadata(display_name="best architecture", description=""),
            tensor=tensor,
        )
        summary_proto = summary_pb2.Summary(value=[*scalars, text_value])
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_proto))
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file; a later call opens a new one in the same ``logdir``."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __getstate__(self) -> dict[str, Any]:
        # the open writer (a file and a thread) does not travel; a copy opens its own event file when called
        return {"logdir": self.logdir, "_generations": list(self._generations)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.logdir, self._generations = state["logdir"], state["_generations"]
        self._pb, self._writer = _tensorboard(), None

    def __repr__(self) -> str:
        return f"TensorBoard({str(self.logdir)!r}, generations={len(self._generations)})"
