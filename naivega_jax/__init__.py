"""naivega_jax: neural architecture search by genetic algorithm in JAX, with trained weights kept through change.

Everything public is re-exported here from the subpackages, each of which lists its names in its own ``__all__``;
the code lives in private modules inside them.
"""

from . import _errors, autofit, data, distributed, evolution, graph, io, mutation, plot, search, train
from ._errors import *
from .autofit import *
from .data import *
from .distributed import *
from .evolution import *
from .graph import *
from .graph._io import OverwriteError as OverwriteError
from .io import *
from .mutation import *
from .plot import *
from .search import *
from .train import *

__version__ = "0.1.0"

__all__ = sorted(
    {
        *_errors.__all__,
        *graph.__all__,
        *search.__all__,
        *mutation.__all__,
        *train.__all__,
        *evolution.__all__,
        *data.__all__,
        *io.__all__,
        *plot.__all__,
        *autofit.__all__,
        *distributed.__all__,
        "OverwriteError",
    }
)
