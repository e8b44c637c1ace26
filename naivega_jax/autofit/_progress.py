"""Progress of a run: a live status line on a terminal (plain lines elsewhere), and the run's log file."""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger("naivega_jax.autofit")

LOG_FILE = "run.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_ACTIVE: list[RunProgress] = []
_CLEAR = "\r\x1b[K"


def format_duration(seconds: float) -> str:
    """A short human duration: ``"42s"``, ``"3m05s"``, ``"1h02m"``; ``"?"`` when unknown.

    Example:
        >>> from naivega_jax.autofit import format_duration
        >>> format_duration(42.4), format_duration(185), format_duration(3725), format_duration(float('nan'))
        ('42s', '3m05s', '1h02m', '?')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class RunProgress:
    """What ``fit`` shows while it runs: one permanent line per event, and on a terminal a status line below them.

    The status line (generation, candidate i/n, best fitness so far, seconds per candidate, elapsed time and ETA)
    is redrawn every ``refresh`` seconds by a background thread while a candidate trains. The ETA is the mean wall
    time per candidate evaluation so far times the evaluations left (to ``max_generations``), capped by the time
    budget. Every line also goes to the run's log file (``log_handler``), whether or not ``enabled``.

    Example:
        >>> import io
        >>> from naivega_jax.autofit import RunProgress
        >>> out = io.StringIO()
        >>> p = RunProgress(population_size=4, max_generations=2, stream=out)
        >>> p.begin_generation(1, 4)
        >>> p.status()
        'gen 1/2 | candidate 1/4 | best - | ? s/candidate | elapsed 0s | ETA ?'
        >>> p.close()
    """

    def __init__(
        self,
        *,
        population_size: int,
        max_generations: int,
        deadline: float | None = None,
        enabled: bool = True,
        stream: TextIO | None = None,
        live: bool | None = None,
        refresh: float = 1.0,
        log_handler: logging.Handler | None = None,
    ):
        self.population_size, self.max_generations, self.deadline = population_size, max_generations, deadline
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.live = bool(enabled and (isatty() if live is None else live))
        self.refresh, self.log_handler = refresh, log_handler
        self.start = time.monotonic()
        self.generation, self.size, self.current, self.done = 0, 0, 0, 0
        self.best: float | None = None
        self.activity: str | None = None
        self.eval_seconds, self.evaluations = 0.0, 0
        self._shown = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.live:
            self._thread = threading.Thread(target=self._tick, name="naivega-progress", daemon=True)
            self._thread.start()
        _ACTIVE.append(self)

    # --- state ------------------------------------------------------------------------------------------------------
    def begin_generation(self, generation: int, size: int, done: int = 0) -> None:
        """A generation of ``size`` members starts, ``done`` of them already scored (a resumed generation)."""
        with self._lock:
            self.generation, self.size, self.done, self.current = generation, size, done, done
            self.activity = None
        self.say(f"Begin generation {generation}" + (f" ({done} of {size} already scored)" if done else ""))

    def set_activity(self, text: str | None) -> None:
        """What the run does between candidate evaluations (shown instead of the candidate), or None."""
        with self._lock:
            self.activity = text
        self._draw()

    def started(self, indices: list[int]) -> None:
        """Members ``indices`` (0-based) start their evaluation."""
        with self._lock:
            self.current = min(indices) if indices else self.current
            self._eval_start = time.monotonic()
        self._draw()

    def finished(self, count: int) -> None:
        """``count`` members finished since the last ``started``."""
        with self._lock:
            self.eval_seconds += time.monotonic() - self._eval_start
            self.evaluations += count
            self.done += count
            self.current = self.done
            self._eval_start = time.monotonic()

    def scored(self, fitness: float | None) -> None:
        """Notes a valid fitness for "best so far"."""
        if fitness is not None and math.isfinite(fitness) and (self.best is None or fitness > self.best):
            self.best = fitness

    @property
    def seconds_per_candidate(self) -> float:
        return self.eval_seconds / self.evaluations if self.evaluations else math.nan

    def eta(self) -> float:
        """Seconds left: evaluations left times the mean so far, capped by the time budget."""
        left = (self.size - self.done) + (self.max_generations - self.generation) * self.population_size
        eta = left * self.seconds_per_candidate if left else 0.0
        if self.deadline is not None:
            budget = max(0.0, self.deadline - time.monotonic())
            eta = budget if math.isnan(eta) else min(eta, budget)
        return eta

    def status(self) -> str:
        """The status line's text."""
        with self._lock:
            best = "-" if self.best is None else f"{self.best:.4f}"
            per = self.seconds_per_candidate
            doing = self.activity or f"candidate {min(self.current + 1, self.size)}/{self.size}"
            return (
                f"gen {self.generation}/{self.max_generations} | {doing} | best {best} | "
                f"{'?' if math.isnan(per) else f'{per:.1f}'} s/candidate | "
                f"elapsed {format_duration(time.monotonic() - self.start)} | ETA {format_duration(self.eta())}"
            )

    # --- output -----------------------------------------------------------------------------------------------------
    def say(self, message: str, level: int = logging.INFO) -> None:
        """A permanent line: logged, and shown above the status line when enabled.

        The ``naivega_jax.autofit`` logger gets it if it is enabled for ``level``; if not, the run's log file
        (``log_handler``) still does.
        """
        if logger.isEnabledFor(level):
            logger.log(level, message)
        elif self.log_handler is not None:
            self.log_handler.handle(logger.makeRecord(logger.name, level, "", 0, message, (), None))
        if self.enabled:
            self.write(message)

    def write(self, text: str) -> None:
        """Writes ``text`` (one or more lines) above the status line."""
        with self._lock:
            if self._shown:
                self.stream.write(_CLEAR)
                self._shown = False
            self.stream.write(text.rstrip("\n") + "\n")
            self.stream.flush()
        self._draw()

    def _draw(self) -> None:
        if not self.live or self.size == 0:
            return
        with self._lock:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write(_CLEAR + self.status()[:width])
            self.stream.flush()
            self._shown = True

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh):
            self._draw()

    def close(self) -> None:
        """Stops the refresh thread and removes the status line; later lines are plain."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self.live = False
            if self._shown:
                self.stream.write(_CLEAR)
                self.stream.flush()
                self._shown = False
        if self in _ACTIVE:
            _ACTIVE.remove(self)


class ProgressHandler(logging.StreamHandler):
    """A logging handler for stderr that writes above the live status line of a running ``fit`` (if any).

    The ``naivega`` command installs it (level WARNING) so that warnings, e.g. from mutations, do not garble the
    status line.

    Example:
        >>> import logging
        >>> from naivega_jax.autofit import ProgressHandler
        >>> isinstance(ProgressHandler(), logging.Handler)
        True
    """

    def emit(self, record: logging.LogRecord) -> None:
        if not _ACTIVE or not _ACTIVE[-1].enabled:
            super().emit(record)
            return
        try:
            _ACTIVE[-1].write(self.format(record))
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def run_log(out_dir: Path) -> Iterator[logging.Handler]:
    """Appends the records of the ``naivega_jax`` loggers (INFO and up, as far as their levels let them through:
    WARNING by default) to ``out_dir/run.log`` while inside; yields the file's handler.

    ``RunProgress`` writes its lines to the handler directly, so the levels and handlers the user configured are
    left as they are.
    """
    handler = logging.FileHandler(Path(out_dir) / LOG_FILE, mode="a", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    package = logging.getLogger("naivega_jax")
    package.addHandler(handler)
    try:
        yield handler
    finally:
        package.removeHandler(handler)
        handler.close()


def describe(value: Any) -> str:
    """A short description of an optimiser spec, e.g. ``Adam(lr=0.0012)``."""
    lr = getattr(value, "learning_rate", None)
    if isinstance(lr, (int, float)):
        return f"{type(value).__name__}(lr={lr:.3g})"
    return repr(value)
