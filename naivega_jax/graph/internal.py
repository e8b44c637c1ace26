"""The graph package's interface to the other naivega_jax packages: plumbing they share, not public API.

Users import ``naivega_jax`` (or ``naivega_jax.graph``); these names may change without notice. Other naivega_jax
packages import graph code from ``naivega_jax.graph`` (public names) or from here, never from its private modules.
"""

from ._activations import check_activation
from ._graph import forward, init_vertex, shield_names
from ._io import Artifact, atomic_directory, check_replaceable, describe_path, load_arrays, save_arrays
from ._ops import check_weight_init
from ._remap import EPS, UTILITY

__all__ = [
    "EPS",
    "UTILITY",
    "Artifact",
    "atomic_directory",
    "check_activation",
    "check_replaceable",
    "check_weight_init",
    "describe_path",
    "forward",
    "init_vertex",
    "load_arrays",
    "save_arrays",
    "shield_names",
]
