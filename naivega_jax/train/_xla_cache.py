"""The persistent XLA compilation cache: compiled train steps survive the process (reruns, resumes, workers).

JAX can write every compiled executable to a directory and read it back in a later process instead of compiling
(``jax_compilation_cache_dir``). That setting is process-wide (every ``jax.jit`` of the program uses it), so library
calls (``ng.train_graph``, ``ng.evaluate_accuracy``, ``ng.evolution.evaluate``, ``ng.evolve``) never touch it. A search
run
turns it on: ``ng.autofit.fit`` (and so ``naivega fit``) at its start, in the user cache directory
(``ng.datasets.cache_dir() / "xla"``: ``$NAIVEGA_JAX_CACHE/xla``, else ``$XDG_CACHE_HOME/naivega_jax/xla``, else
``~/.cache/naivega_jax/xla``), unless:

* the environment variable ``NAIVEGA_JAX_XLA_CACHE`` says ``off`` (or ``0``, ``false``, ``no``), or names another
  directory;
* the program configured a cache directory of its own (``jax.config.update("jax_compilation_cache_dir", ...)``):
  that one is left as it is;
* ``ng.train.set_compilation_cache(...)`` was called (``None`` turns the cache off).

Only compilations that took at least ``min_compile_seconds`` (default 0.2 s) are written; the directory is kept
under ``max_bytes`` (least recently used entries go first) when the ``filelock`` package is installed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import jax

ENV = "NAIVEGA_JAX_XLA_CACHE"
OFF = ("off", "0", "false", "no", "none")
MIN_COMPILE_SECONDS = 0.2
MAX_BYTES = 2 * 1024**3

_lock = threading.Lock()
_decided = False


def default_compilation_cache_dir() -> Path:
    """``ng.datasets.cache_dir() / "xla"``: where the engine keeps compiled executables by default.

    Example:
        >>> import naivega_jax as ng
        >>> ng.train.default_compilation_cache_dir().name
        'xla'
    """
    from ..data.datasets import cache_dir

    return cache_dir() / "xla"


def _reset_jax_cache() -> None:
    # JAX decides once per process whether the cache is used (at the first compile); forget that decision so a
    # directory set after earlier compiles takes effect.
    try:
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - older or newer JAX without this entry point
        pass


def _filelock_available() -> bool:
    try:
        import filelock  # noqa: F401
    except ImportError:
        return False
    return True


def set_compilation_cache(
    path: str | os.PathLike[str] | None = "default",
    *,
    min_compile_seconds: float = MIN_COMPILE_SECONDS,
    max_bytes: int | None = MAX_BYTES,
) -> str | None:
    """Turns JAX's persistent compilation cache on at ``path`` (``"default"``: the user cache directory) or off
    (``None``); returns the directory in use, or None.

    This changes JAX's process-wide configuration: every ``jax.jit`` in the process uses the cache. Compilations
    shorter than ``min_compile_seconds`` are not written. ``max_bytes`` bounds the directory (least recently used
    entries are deleted; needs the ``filelock`` package, otherwise the bound is not applied); None: no bound.

    Example:
        >>> import tempfile, naivega_jax as ng
        >>> d = tempfile.mkdtemp()
        >>> ng.train.set_compilation_cache(d) == d, ng.train.compilation_cache_dir() == d
        (True, True)
        >>> ng.train.set_compilation_cache(None) is None, ng.train.compilation_cache_dir() is None
        (True, True)
    """
    global _decided
    if isinstance(min_compile_seconds, bool) or not isinstance(min_compile_seconds, (int, float)):
        raise TypeError(f"set_compilation_cache: min_compile_seconds must be a number, got {min_compile_seconds!r}")
    if min_compile_seconds < 0:
        raise ValueError(f"set_compilation_cache: min_compile_seconds must be >= 0, got {min_compile_seconds!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"set_compilation_cache: max_bytes must be None or a positive int, got {max_bytes!r}")
    with _lock:
        _decided = True
        if path is None:
            jax.config.update("jax_compilation_cache_dir", None)
            _reset_jax_cache()
            return None
        if isinstance(path, str) and path == "default":
            path = default_compilation_cache_dir()
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"set_compilation_cache: path must be a directory, 'default' or None, got {path!r}")
        directory = Path(path).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
        size = -1 if max_bytes is None or not _filelock_available() else int(max_bytes)
        jax.config.update("jax_compilation_cache_max_size", size)
        jax.config.update("jax_compilation_cache_dir", str(directory))
        _reset_jax_cache()
        return str(directory)


def compilation_cache_dir() -> str | None:
    """The persistent compilation cache directory JAX uses now, or None when it is off.

    Example:
        >>> import naivega_jax as ng
        >>> ng.train.compilation_cache_dir() is None or isinstance(ng.train.compilation_cache_dir(), str)
        True
    """
    return jax.config.jax_compilation_cache_dir or None  # type: ignore[attr-defined]  # jax's Config declares its options at run time


def ensure_default_compilation_cache() -> None:
    """Applies the search's default once per process: the environment variable, else the program's own setting,
    else the user cache directory. ``ng.autofit.fit`` calls it at its start; the engine never does, because it
    changes JAX's process-wide configuration."""
    global _decided
    if _decided:
        return
    with _lock:
        if _decided:
            return
        _decided = True
        env = os.environ.get(ENV)
        own = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]  # jax's Config declares its options at run time
    if env is not None and env.strip().lower() in OFF:
        return
    if env:
        set_compilation_cache(env)
    elif not own:
        with contextlib.suppress(OSError):  # an unwritable home directory: run without the cache
            set_compilation_cache("default")
