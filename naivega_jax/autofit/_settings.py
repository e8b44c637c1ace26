"""``FitSettings``: every setting of ``fit`` that is not data or a component, checked in one place."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..evolution import TrainThenFitness
from ..train import Optimiser, is_plain_optax
from ._data import VALIDATION_SPLIT
from ._spaces import check_task

#: the share of a time budget a call of ``fit`` keeps for training the best member on at the end when it does not set
#: ``final_training`` (with fit's own training), if the time stops the search: then each member has trained a few
#: epochs at most, and without a final phase the returned model is barely trained (Fashion-MNIST in 15 minutes:
#: about 2 epochs)
TIMED_FINAL_TRAINING = 0.5
#: under a time budget, how many of the fittest members the final phase races when ``fit`` does not set
#: ``final_candidates``: on Fashion-MNIST in 15 minutes the second fittest, trained as the final phase trains, ended 1
#: and 2 points above the fittest on two seeds (the fittest was too slow to train well in the time left). Measured
#: over 3 seeds: 90.55 +- 0.82% test accuracy against 90.11 +- 0.12% without a race (+1.49 points where the second
#: won, -0.18 where the fittest won its race, no race where the fittest was also the faster; benchmarks/RESULTS.md)
TIMED_FINAL_CANDIDATES = 2


def _int_at_least(name: str, value: Any, low: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"fit: {name} must be {'None or ' if optional else ''}an int >= {low}, got {value!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """The settings of ``ng.autofit.fit`` (see it for what each does), validated when made: a bad value raises a
    one-line error naming the setting, the value and what was expected, before any work.

    ``fit`` builds one from its keyword arguments; build one yourself to check a configuration ahead, or to keep it
    (``dataclasses.asdict``) beside your results.

    Example:
        >>> from naivega_jax.autofit import FitSettings
        >>> FitSettings(population_size=16, final_training=0.2).max_generations
        6
        >>> FitSettings(population_size=2)
        Traceback (most recent call last):
        ...
        ValueError: fit: population_size must be an int >= 3, got 2
    """

    population_size: int = 8
    max_generations: int = 6
    time_budget: float | None = None
    validation_split: float = VALIDATION_SPLIT
    epochs_per_generation: int | None = None
    executor_chunk: int | None = None
    precompile: bool | None = None
    progress: bool = True
    final_training: float | None = None
    task: str = "classification"
    optimiser: Any = None
    keep_optimiser_state: bool | None = None
    screening: int | None = None
    final_candidates: int | None = None
    anneal_last: bool | None = None

    def __post_init__(self) -> None:
        _int_at_least("population_size", self.population_size, 3)
        _int_at_least("max_generations", self.max_generations, 1)
        budget = self.time_budget
        if budget is not None and not (
            isinstance(budget, (int, float)) and not isinstance(budget, bool) and budget > 0
        ):
            raise ValueError(f"fit: time_budget must be None or a number of seconds > 0, got {budget!r}")
        _int_at_least("screening", self.screening, 1, optional=True)
        _int_at_least("final_candidates", self.final_candidates, 1, optional=True)
        if (self.final_candidates or 1) > 1 and budget is None:
            raise ValueError(
                f"fit: final_candidates races members for equal time in the final phase; it needs a time_budget, "
                f"got final_candidates={self.final_candidates} without one"
            )
        _int_at_least("epochs_per_generation", self.epochs_per_generation, 1, optional=True)
        _int_at_least("executor_chunk", self.executor_chunk, 1, optional=True)
        if self.precompile is not None and not isinstance(self.precompile, bool):
            raise TypeError(f"fit: precompile must be None or a bool, got {self.precompile!r}")
        share = self.final_training
        if share is not None and not (
            isinstance(share, (int, float)) and not isinstance(share, bool) and 0 <= share < 1
        ):
            raise ValueError(f"fit: final_training must be None, 0 (none) or a share in (0, 1), got {share!r}")
        check_task(self.task, "fit")
        opt = self.optimiser
        if opt is not None and not isinstance(opt, Optimiser) and not is_plain_optax(opt):
            raise TypeError(
                f"fit: optimiser must be None, an optimiser spec (ng.Adam(1e-3), ...) or an optax "
                f"GradientTransformation, got {opt!r}"
            )
        keep = self.keep_optimiser_state
        if keep is not None and not isinstance(keep, bool):
            raise TypeError(f"fit: keep_optimiser_state must be None, True or False, got {keep!r}")
        if self.anneal_last is not None and not isinstance(self.anneal_last, bool):
            raise TypeError(f"fit: anneal_last must be None, True or False, got {self.anneal_last!r}")

    def final_share(self, fitness: Any) -> float | None:
        """The share of the budget kept for the final phase: ``final_training`` as given (0: None, no final phase);
        when it is None, ``TIMED_FINAL_TRAINING`` of a ``time_budget`` with ``fit``'s own training (a phase that
        ``fit`` runs only if the time stops the search), else None.

        Example:
            >>> from naivega_jax.autofit import FitSettings
            >>> FitSettings().final_share(None), FitSettings(time_budget=60).final_share(None)
            (None, 0.5)
            >>> FitSettings(time_budget=60, final_training=0).final_share(None)
        """
        if self.final_training is not None:
            return self.final_training or None
        own = fitness is None or isinstance(fitness, TrainThenFitness)
        return TIMED_FINAL_TRAINING if self.time_budget is not None and own else None

    def race_size(self) -> int:
        """How many of the fittest members the final phase races: ``final_candidates`` as given; when it is None,
        ``TIMED_FINAL_CANDIDATES`` under a ``time_budget``, else 1 (the fittest trains on alone).

        Example:
            >>> from naivega_jax.autofit import FitSettings
            >>> FitSettings().race_size(), FitSettings(time_budget=60).race_size()
            (1, 2)
            >>> FitSettings(time_budget=60, final_candidates=1).race_size()
            1
        """
        if self.final_candidates is not None:
            return self.final_candidates
        return TIMED_FINAL_CANDIDATES if self.time_budget is not None else 1

    def final_after(self) -> tuple[str, ...]:
        """The ways a search may end for the final phase to follow: a given ``final_training`` follows a search
        that ends by its generations or its time; the default (a time budget's half) only one its time stopped, so a
        search that finishes its generations sooner ends the run, as upstream."""
        return ("max_generations", "time_budget") if self.final_training else ("time_budget",)

    def check_fitness(self, fitness: Any) -> None:
        """The settings that configure ``fit``'s own training need it: refused with a ``fitness`` of your own."""
        if fitness is None:
            return
        if self.final_training and not isinstance(fitness, TrainThenFitness):
            raise ValueError(
                f"fit: final_training trains the best as fit's own fitness does; it needs fitness=None or an "
                f"ng.TrainThenFitness, got {type(fitness).__name__}"
            )
        if self.anneal_last and not isinstance(fitness, TrainThenFitness):
            raise ValueError(
                f"fit: anneal_last trains the last generation in learning-rate steps; it needs fitness=None or an "
                f"ng.TrainThenFitness, got {type(fitness).__name__}"
            )
        if (self.screening or 1) > 1 and not isinstance(fitness, TrainThenFitness):
            raise ValueError(
                f"fit: screening trains the first generation's members on a share of the examples; it needs "
                f"fitness=None or an ng.TrainThenFitness, got {type(fitness).__name__}"
            )
        if self.optimiser is not None or self.keep_optimiser_state is not None:
            raise ValueError(
                "fit: optimiser and keep_optimiser_state configure fit's own fitness; with a fitness of your own, "
                "set them there (ng.TrainThenFitness(..., default_optimiser=..., keep_optimiser_state=...))"
            )
