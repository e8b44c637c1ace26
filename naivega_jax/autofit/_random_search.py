"""``random_search``: the baseline a search must beat, run with the search's own sampler, engine and files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..evolution import Callback, Executor, Population
from ._data import VALIDATION_SPLIT, default_epochs, default_partitions, training_size
from ._fit import SCREENING, fit
from ._run import generation_examples, screen_generations, screen_scale, screened_examples


def search_budget(
    n_train: int,
    population_size: int = 8,
    max_generations: int = 6,
    epochs: int | None = None,
    screening: int = SCREENING,
) -> int:
    """Training examples a search with these settings spends when it runs to its end: every member of every
    generation trains ``epochs`` epochs on ``n_train`` examples, except a screened first generation's ``screening *
    population_size`` members, which train ``screened_examples`` each: from 12 generations on, a multiple of what
    they train in a 6-generation run (``screen_scale``), and the run ends that many generations early as the extra
    training pays for (``screen_generations``), as ``fit`` runs without a time budget. ``epochs`` None: ``fit``'s
    default, ``default_epochs(n_train)`` epochs of one of ``default_partitions(n_train)`` parts of the data.

    Example:
        >>> from naivega_jax.autofit import search_budget
        >>> search_budget(3600)  # the README's main job on MNIST-1D: 24 x 2 epochs, then 8 x 5 epochs x 5 gens
        892800
        >>> search_budget(3600, screening=1)  # upstream's: 8 members x 6 generations x 5 epochs x 3600 examples
        864000
        >>> search_budget(3600, max_generations=24)  # 24 x 8 epochs (5 generations' worth), then 8 x 5 x 19 gens
        3427200
        >>> search_budget(54000)  # Fashion-MNIST: a generation is one of 3 parts of 18,000; the screen 6,000 each
        864000
    """
    for name, value in (
        ("n_train", n_train),
        ("population_size", population_size),
        ("max_generations", max_generations),
        ("screening", screening),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"search_budget: {name} must be a positive int, got {value!r}")
    parts = 1
    if epochs is None:
        epochs, parts = default_epochs(n_train), default_partitions(n_train)
    each = generation_examples(n_train, epochs, parts)
    if screening == 1:
        return population_size * max_generations * each
    scale = screen_scale(max_generations, None)
    later = max(0, max_generations - screen_generations(n_train, epochs, screening, parts, scale))
    return population_size * (later * each + screening * screened_examples(n_train, epochs, screening, parts, scale))


def random_search(
    key: jax.Array,
    x: Any,
    y: Any,
    *,
    out_dir: str | Path,
    members: int = 8,
    budget: int | None = None,
    space: Any = None,
    fitness: Callable | None = None,
    validation_split: float = VALIDATION_SPLIT,
    time_budget: float | None = None,
    callbacks: Sequence[Callback] = (),
    executor: Executor | None = None,
    executor_chunk: int | None = None,
    progress: bool = True,
    run_info: dict[str, Any] | None = None,
    test_data: tuple[Any, Any] | None = None,
    task: str = "classification",
    initial_members: Sequence[Any] | None = None,
    anneal_last: bool | None = None,
) -> Population:
    """Random search of a search's own space: ``members`` candidates drawn as ``fit`` draws its first generation,
    each trained on an equal share of ``budget`` training examples, scored, and the best kept.

    This is the honest baseline for a search (random search is the one many NAS methods fail to beat): the same
    space, architectures, optimisers and batch sizes (``initial_population``: member ``i`` from ``fold_in(key, i)``,
    so the members are exactly the first generation ``fit`` with the same key and population size would train), the
    same engine and fitness (by default ``TrainThenFitness`` and ``AccuracyVsSize`` on the same validation split),
    and the same run directory: checkpoints, ``summary.json`` (``totals.train_examples``, the examples actually
    trained on), the best model in ``out_dir/best``, resume after a kill or a time budget.

    Args:
        key: a ``jax.random`` key.
        x, y: the data, as for ``fit``.
        out_dir: the run directory.
        members: how many candidates to draw (K); each trains ``round(budget / (members * n_train))`` epochs, at
            least 1, so the examples spent are ``budget`` up to that rounding (``summary.json`` has the exact count).
        budget: training examples for the whole search; default ``search_budget(n_train)``, what ``fit`` spends
            with its defaults (8 members, 6 generations, ``default_epochs``).

    ``space``, ``fitness``, ``validation_split``, ``time_budget``, ``callbacks``, ``executor``, ``executor_chunk``,
    ``progress``, ``run_info``, ``test_data``, ``task``, ``initial_members`` and ``anneal_last`` are as for
    ``fit``: for images the last of the ``members`` is by default drawn from ``conventional_space``, as in
    ``fit``'s first generation, and ``task="regression"`` trains with the same squared error and scores with the
    same fitness. Its one generation is its last: with ``anneal_last=True`` each member trains its epochs with the
    step-decaying learning rate a search's last generation trains with then, so a search run with it is compared
    with a baseline trained the same way.

    Returns the scored members, best first.

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> x, y, _, _ = ng.datasets.load("digits")
        >>> pop = ng.random_search(jax.random.key(0), x[:300], y[:300], out_dir=tempfile.mkdtemp(), members=3,
        ...                        budget=3 * 270 * 2, progress=False)  # doctest: +SKIP
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 3:
        raise ValueError(f"random_search: members must be an int >= 3, got {members!r}")
    n = (np.shape(x) or (0,))[0]
    n_train = training_size(n, validation_split)  # fit checks and prepares the data itself
    if n_train < 1:
        raise ValueError(f"random_search: x has {n} examples, none left for training after the validation split")
    if budget is None:
        budget = search_budget(n_train)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"random_search: budget must be a positive int (training examples), got {budget!r}")
    epochs = max(1, round(budget / (members * n_train)))
    if fitness is not None and hasattr(fitness, "epochs") and fitness.epochs != epochs:
        raise ValueError(
            f"random_search: fitness trains {fitness.epochs} epochs, but a budget of {budget} examples over {members} "
            f"members of {n_train} examples gives {epochs}; pass fitness=None or one with epochs={epochs}"
        )
    info = {"strategy": {"name": "random", "members": members, "budget": budget, "epochs": epochs}}
    return fit(
        x,
        y,
        key=key,
        out_dir=out_dir,
        population_size=members,
        max_generations=1,
        time_budget=time_budget,
        callbacks=callbacks,
        fitness=fitness,
        space=space,
        validation_split=validation_split,
        epochs_per_generation=epochs,
        executor=executor,
        executor_chunk=executor_chunk,
        progress=progress,
        run_info={**info, **(run_info or {})},
        test_data=test_data,
        task=task,
        initial_members=initial_members,
        anneal_last=anneal_last,
        screening=1,  # every member trains its equal share: no first-generation screening
        final_training=0,  # nor a final phase for the best, under a time budget too
    )
