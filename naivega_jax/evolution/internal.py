"""The evolution package's interface to the other naivega_jax packages: plumbing they share, not public API.

Users import ``naivega_jax`` (or ``naivega_jax.evolution``); these names may change without notice. Other
naivega_jax packages import evolution code from ``naivega_jax.evolution`` (public names) or from here, never from
its private modules.
"""

# The executors (naivega_jax.distributed) recognise the population's scoring job, and score a candidate whose job
# they could not run the way the population scores a failed fitness.
from ._population import _failure as score_failure
from ._population import _ScoreMember as ScoreMember

__all__ = ["ScoreMember", "score_failure"]
