"""The train package's interface to the other naivega_jax packages: plumbing they share, not public API.

Users import ``naivega_jax`` (or ``naivega_jax.train``); these names may change without notice. Other naivega_jax
packages import training code from ``naivega_jax.train`` (public names) or from here, never from its private modules.
"""

from . import _engine
from ._cache import CALL_STAT_KEYS
from ._engine import DRIVERS


def batches_on_device() -> bool:
    """Whether the engine keeps the examples on the device and gathers batches there (every backend but CPU).

    Looked up in the engine on each call, so that a test which forces the device path on CPU (by patching the
    engine's choice) changes every caller at once.
    """
    return _engine._batches_on_device()


__all__ = ["CALL_STAT_KEYS", "DRIVERS", "batches_on_device"]
