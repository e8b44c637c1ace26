"""The default search's populations without training, for the analyses and benchmarks that need search-like graphs.

AutoFlux's default space for MNIST-1D shapes ((40, 1), 10 classes) samples the first population from
``jax.random.key(seed)``; every next one is ``evolution`` (default: ``ng.autofit.default_evolution``) applied to the
last with a random fitness (``host_rng(key(seed), "fitness", generation)``) and ``key(1000 * seed + generation)``.
The mutation mix, not the weights, is what these callers look at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import jax

import naivega_jax as ng
from naivega_jax._random import host_rng
from naivega_jax.autofit import initial_population


def populations(seed: int, population_size: int, evolution: Callable | None = None) -> Iterator[list]:
    """Yields the candidates of generation 1, 2, ... (endless: take as many as needed; each is evolved on demand)."""
    if evolution is None:
        evolution = ng.autofit.default_evolution(population_size, (40, 1))
    space = ng.autofit.default_space((40, 1), 10)
    population = list(initial_population(jax.random.key(seed), space, (40, 1), population_size))
    generation = 0
    while True:
        yield population
        rng = host_rng(jax.random.key(seed), "fitness", generation)
        scored = [dataclasses.replace(c, fitness=float(rng.uniform())) for c in population]
        population = list(evolution(jax.random.key(1000 * seed + generation), scored))
        generation += 1
