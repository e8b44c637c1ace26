"""The train package's interface to the other naivega_jax packages: plumbing they share, not public API.

Users import ``naivega_jax`` (or ``naivega_jax.train``); these names may change without notice. Other naivega_jax
packages import training code from ``naivega_jax.train`` (public names) or from here, never from its private modules.
"""

from typing import Any

from . import _engine
from ._cache import CALL_STAT_KEYS
from ._engine import DRIVERS
from ._optimisers import Optimiser, as_optimiser
from ._step import _check_state, _state_shapes


def opt_state_shapes(optimiser: Any, params: Any) -> Any:
    """The shapes (``jax.ShapeDtypeStruct`` leaves) of the tree-form optimiser state ``train_graph`` takes and returns
    for ``optimiser`` (a spec or plain optax) and ``params``; memoised, as the engine computes them."""
    return _state_shapes(as_optimiser(optimiser).skeleton(), params)


def opt_state_fits(optimiser: Any, params: Any, opt_state: Any) -> bool:
    """Whether ``train_graph(..., opt_state=opt_state)`` would accept ``opt_state`` for ``optimiser`` and ``params``:
    the engine's own check (structure, shapes and dtypes), without its error."""
    optimiser = as_optimiser(optimiser)
    if not isinstance(optimiser, Optimiser):
        return False  # not an optimiser: the engine refuses it with its own message
    skeleton = optimiser.skeleton()
    try:
        _check_state(opt_state, _state_shapes(skeleton, params), skeleton, "")
    except ValueError:
        return False
    return True


def batches_on_device() -> bool:
    """Whether the engine keeps the examples on the device and gathers batches there (every backend but CPU).

    Looked up in the engine on each call, so that a test which forces the device path on CPU (by patching the
    engine's choice) changes every caller at once.
    """
    return _engine._batches_on_device()


__all__ = ["CALL_STAT_KEYS", "DRIVERS", "batches_on_device", "opt_state_fits", "opt_state_shapes"]
