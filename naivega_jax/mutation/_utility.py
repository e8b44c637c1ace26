"""The per-vertex neuron utility that utility-weighted mutation probabilities use by default."""

from __future__ import annotations

import numpy as np

from ..graph import Graph
from ..graph import default_utility as graph_default_utility


def default_utility(graph: Graph, name: str) -> np.ndarray | None:
    """The graph's default neuron utility of ``name``, or None for a vertex that has none of its own.

    A vertex has one when it has parameters or a stored activation utility; others (pools, parameter-free adds
    and concats, inputs) have none, and NaiveGAflux gives them the base probability.
    """
    if name in graph.params or "utility" in graph.state.get(name, {}):
        return graph_default_utility(graph, name)
    return None
