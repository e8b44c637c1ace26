"""What keeps a run safe from its surroundings: one process per run directory, and signals that stop it cleanly."""

from __future__ import annotations

import _thread
import contextlib
import datetime
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._errors import NaiveGAError

LOCK_FILE = ".lock"


class RunDirectoryError(NaiveGAError):
    """``out_dir`` holds files of something else, of a run with other data or settings, or of a run in use.

    Example:
        >>> import naivega_jax as ng
        >>> issubclass(ng.autofit.RunDirectoryError, ng.NaiveGAError)
        True
    """


class RunLock:
    """An exclusive lock on a run directory, held by one process while it runs the search there.

    The lock is ``flock`` on ``out_dir/.lock``: the operating system releases it when the process ends, however it
    ends, so a killed run never blocks its resume. The file names the holder (process id, host, start time) for the
    error a second process gets. Where ``fcntl`` does not exist (Windows) there is no lock.

    Example:
        >>> import tempfile
        >>> from naivega_jax.autofit._control import RunLock
        >>> d = tempfile.mkdtemp()
        >>> with RunLock(d):
        ...     try:
        ...         RunLock(d).acquire()
        ...     except Exception as e:
        ...         print(type(e).__name__)
        RunDirectoryError
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.path = Path(out_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirectoryError(
                f"out_dir {str(self.path.parent)!r} is in use by {holder}; wait for that run to end or stop it "
                "(one process per run directory)"
            ) from None
        except OSError as e:  # a file system without flock (some network mounts): run, but say what is not guarded
            logging.getLogger("naivega_jax").warning(
                "cannot lock %s (%s): nothing stops a second process from using this run directory at once",
                self.path,
                e,
            )
        started = datetime.datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} (since {started})\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        # the file stays: removing it could let a third process lock a new file while a second waits on the old one
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Interrupted(BaseException):
    """Raised in the main thread when a stop signal arrives while candidates train; not an ``Exception``, so that
    no candidate's failure handling mistakes it for the candidate failing."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


REDELIVERY_DELAY = 0.01  # seconds; see StopSignals

_NAMES: dict[int, str] = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


def install_stop_handlers(handler: Any) -> dict[int, Any]:
    """Installs ``handler`` for SIGINT and SIGTERM, from the main thread only and where a signal is not ignored (a
    process started with SIGINT ignored, as a shell's background jobs are, keeps ignoring it); returns the previous
    handlers for ``restore_handlers``. ``fit`` installs its own while it runs (``StopSignals``); a program around it
    (the ``naivega`` command) uses this for the time outside.

    Example:
        >>> import signal, naivega_jax as ng
        >>> previous = ng.autofit.install_stop_handlers(signal.default_int_handler)
        >>> ng.autofit.restore_handlers(previous)
    """
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _NAMES:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
    return previous


def restore_handlers(previous: dict[int, Any]) -> None:
    """Puts back the handlers ``install_stop_handlers`` returned."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


class StopSignals:
    """While active, SIGINT and SIGTERM ask the run to stop cleanly instead of killing it.

    The first signal sets ``signum``; if candidates are training (inside ``interruptible()``) it also raises
    ``Interrupted`` there, so that the candidate in progress is dropped (a resumed run trains it again) instead of
    finished. Elsewhere (checkpoints, evolution, plots) the work in hand completes and the run stops at the next
    boundary. A second signal ends the process at once (exit status 128 + the signal's number); checkpoints are
    written atomically, so the last complete one is intact.

    Handlers are installed as ``install_stop_handlers`` installs them; the previous handlers come back on exit.

    Python runs a signal handler between any two bytecodes of the main thread, also inside a garbage-collector
    callback (JAX registers one) or a ``__del__``, where an exception cannot propagate: Python reports it as
    "Exception ignored" and drops it. So while active, ``sys.unraisablehook`` is wrapped: an ``Interrupted`` dropped
    that way is not reported; a helper thread delivers the signal again (``_thread.interrupt_main``) once the main
    thread has left that code, and it raises in the training code that runs then. Every other unraisable exception
    goes to the previous hook, which comes back on exit.
    """

    def __init__(self):
        self.signum: int | None = None
        self._interruptible = False
        self._redeliver = False
        self._in_hook = False
        self._redelivery: threading.Thread | None = None
        self._previous: dict[int, Any] = {}
        self._previous_hook: Any = None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else _NAMES.get(self.signum, f"signal {self.signum}")

    def __enter__(self) -> StopSignals:
        self._previous = install_stop_handlers(self._handle)
        if self._previous:
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._redelivery is not None:  # a signal delivered again must reach this handler, not the one restored
            self._redelivery.join()
            deadline = time.monotonic() + 1.0
            while self._redeliver and time.monotonic() < deadline:
                pass  # the handler runs between these bytecodes and clears the flag
        restore_handlers(self._previous)
        self._previous = {}
        if self._previous_hook is not None:
            if sys.unraisablehook == self._unraisable:  # a hook installed after ours stays
                sys.unraisablehook = self._previous_hook
            self._previous_hook = None

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            self._in_hook = True
            try:
                self._deliver_later(unraisable.exc_value.signum)
            finally:
                self._in_hook = False
            return
        self._previous_hook(unraisable)

    def _deliver_later(self, signum: int) -> None:
        # from a thread, a little later: delivered from here, the handler would run here, where exceptions drop
        self._redelivery = threading.Thread(target=self._deliver_again, args=(signum,), daemon=True)
        self._redelivery.start()

    def _deliver_again(self, signum: int) -> None:
        time.sleep(REDELIVERY_DELAY)
        if self._interruptible:
            self._redeliver = True
            _thread.interrupt_main(signal.Signals(signum))

    def _handle(self, signum: int, frame: Any) -> None:
        if self._redeliver:  # the first signal again, after its exception was dropped (see the class docstring)
            self._redeliver = False
            if self._in_hook:
                self._deliver_later(signum)
            elif self._interruptible:
                raise Interrupted(signum)
            return
        if self.signum is not None:
            os.write(2, f"\n{_NAMES.get(signum, signum)} again: aborting at once\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        # os.write, not print or logging: a handler may run while the main thread holds their locks
        message = f"\n{self.name} received: stopping cleanly (checkpoint, summary); send it again to abort at once\n"
        os.write(2, message.encode())
        if self._interruptible:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Candidates train inside: a first signal raises ``Interrupted`` here."""
        if self.signum is not None:
            raise Interrupted(self.signum)
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False
