"""A Ray cluster: one task (or one call to a long-lived actor) per member evaluation."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..evolution import Candidate
from ..evolution.internal import ScoreMember, score_failure
from ..train import ensure_default_compilation_cache
from ._local import check_call

logger = logging.getLogger("naivega_jax")


def _import_ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("RayExecutor needs Ray: pip install 'naivega-jax[ray]'") from e
    return ray


def _run(fn: Callable[[Any], Any], item: Any) -> Any:
    ensure_default_compilation_cache()  # a worker process of a search: reads and writes the disk cache as fit does
    return fn(item)


class _Evaluator:
    """The actor: a process that evaluates members one after another and keeps its compiled steps."""

    def run(self, fn: Callable[[Any], Any], item: Any) -> Any:
        ensure_default_compilation_cache()
        return fn(item)

    def pid(self) -> int:
        import os

        return os.getpid()


def _lost(fn: Any, item: Any, index: int, error: BaseException) -> Any:
    """The result of a member whose evaluation never came back: the invalid fitness, or the error re-raised."""
    reason = f"the worker evaluating member {index} failed: {type(error).__name__}: {_first_line(error)}"
    if isinstance(fn, ScoreMember) and isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Candidate):
        return score_failure(item[1], fn.invalid_fitness, reason)
    raise RuntimeError(f"RayExecutor: {reason}") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def _same(a: Any, b: Any) -> bool:
    """``evaluate`` wraps the fitness anew every generation; equal wrappers hold the same fitness object."""
    try:
        return a is b or bool(a == b)
    except Exception:  # an __eq__ that cannot answer: ship the function again
        return False


def _check_number(value: Any, name: str, low: float, integer: bool) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low:
        what = "an int" if integer else "a number"
        raise ValueError(f"RayExecutor: {name} must be {what} >= {low}, got {value!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class RayExecutor:
    """Evaluates members on a Ray cluster: calls to long-lived actors (default), or one Ray task per member.

    The fitness (with its data) goes to the object store once per generation; each member travels as its pickled
    ``(key, candidate)`` (the graph's spec in the pickle, its arrays as numpy) and comes back the same way. Keys are
    derived from population indices before anything is sent and results are gathered in population order, so the
    population is the same as in-process whatever the number of workers or the order they finish in.

    Faults: a worker process that dies mid-evaluation (killed, out of memory, node lost) has its member retried up
    to ``max_retries`` times on another worker (a dead actor is restarted in a new process; a task runs again).
    A member whose evaluation still does not come back gets the fitness's invalid value with
    ``info["failure"]`` saying why, logged as any failed evaluation; the others are kept.

    Compiled train steps live in the process that compiled them. Actors (one per ``num_cpus_per_task`` CPUs, or
    ``num_gpus_per_task`` GPUs, of the cluster) keep theirs for the whole run, and a free actor takes first a
    member whose spec it has compiled, so a spec compiles once per run, not once per worker; where a member runs
    never changes what it scores. Tasks (``actors=False``) scale with a growing cluster but land on any worker: on
    2 CPUs they needed 3-4 generations before every worker had compiled every spec (benchmarks/RESULTS.md), and
    Ray never reuses a worker after a GPU task, so every GPU task starts JAX and compiles anew. With a fractional
    ``num_gpus_per_task``, workers get ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` so that several JAX processes share
    a GPU; with none, ``JAX_PLATFORMS=cpu`` (Ray leaves the node's GPUs visible to workers that hold none, and JAX
    would claim them all). ``env_vars`` overrides both.

    Args:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None connects to a Ray
            already started in this process, or starts a local one.
        num_cpus: CPUs of the local Ray that this executor starts (None: all); ignored with an address.
        num_cpus_per_task: CPUs that each evaluation reserves.
        num_gpus_per_task: GPUs that each evaluation reserves (fractions share a GPU).
        max_retries: how many times a member whose worker died is evaluated again.
        actors: evaluate on long-lived actors (True) or one task per member (False).
        num_actors: how many actors (default: as many as the cluster's CPUs, or GPUs, allow for one evaluation each).
        env_vars: environment variables for the workers.
        init_kwargs: more arguments for ``ray.init`` when this executor starts or joins Ray.

    ``close()`` (or leaving a ``with`` block) shuts down a Ray that this executor started.

    Example:
        >>> import naivega_jax as ng
        >>> ng.distributed.RayExecutor(num_cpus=2, max_retries=1)
        RayExecutor(address=None, num_cpus=2, num_cpus_per_task=1, num_gpus_per_task=0, max_retries=1, actors=True)
    """

    address: str | None = None
    num_cpus: int | None = None
    num_cpus_per_task: float = 1
    num_gpus_per_task: float = 0
    max_retries: int = 1
    actors: bool = True
    num_actors: int | None = dataclasses.field(default=None, repr=False)
    env_vars: Mapping[str, str] | None = dataclasses.field(default=None, repr=False)
    init_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _state: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.address is not None and not isinstance(self.address, str):
            raise TypeError(f"RayExecutor: address must be None or a string such as 'auto', got {self.address!r}")
        if self.num_cpus is not None:
            _check_number(self.num_cpus, "num_cpus", 1, True)
        _check_number(self.num_cpus_per_task, "num_cpus_per_task", 0, False)
        _check_number(self.num_gpus_per_task, "num_gpus_per_task", 0, False)
        _check_number(self.max_retries, "max_retries", 0, True)
        if self.num_actors is not None:
            _check_number(self.num_actors, "num_actors", 1, True)
        if not isinstance(self.actors, bool):
            raise TypeError(f"RayExecutor: actors must be a bool, got {self.actors!r}")

    # ---- the cluster -------------------------------------------------------------------------------------------

    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": True, **self.init_kwargs}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(address=self.address, **kwargs)
            self._state["started"] = True
        return ray

    def _options(self) -> dict:
        options: dict[str, Any] = {"num_cpus": self.num_cpus_per_task, "num_gpus": self.num_gpus_per_task}
        env = dict(self.env_vars or {})
        if self.num_gpus_per_task == 0:  # Ray leaves every GPU visible to a worker that holds none
            env.setdefault("JAX_PLATFORMS", "cpu")
        elif self.num_gpus_per_task < 1:
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if env:
            options["runtime_env"] = {"env_vars": env}
        return options

    def close(self) -> None:
        """Kills this executor's actors and shuts down the Ray that it started (not one started elsewhere)."""
        ray = _import_ray()
        for actor in self._state.pop("actors", []):
            ray.kill(actor)
        self._state.pop("fn", None)
        if self._state.pop("started", False) and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- evaluation --------------------------------------------------------------------------------------------

    def _shipped(self, ray, fn: Callable) -> Any:
        """``fn`` in the object store, put there once while the same fitness is used."""
        cached = self._state.get("fn")
        if cached is not None and _same(cached[0], fn):
            return cached[1]
        ref = ray.put(fn)
        self._state["fn"] = (fn, ref)
        return ref

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list:
        items = check_call(fn, items, "RayExecutor")
        if not items:
            return []
        ray = self._ray()
        fn_ref = self._shipped(ray, fn)
        t0 = time.perf_counter()
        results = self._by_actors(ray, fn, fn_ref, items) if self.actors else self._by_tasks(ray, fn, fn_ref, items)
        logger.debug("RayExecutor: %d members in %.2f s", len(items), time.perf_counter() - t0)
        return results

    def _by_tasks(self, ray, fn: Callable, fn_ref: Any, items: list) -> list:
        remote = self._state.get("task")
        if remote is None:
            remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False, **self._options())(_run)
            self._state["task"] = remote
        refs = [remote.remote(fn_ref, item) for item in items]
        results = []
        for i, (ref, item) in enumerate(zip(refs, items)):
            try:
                results.append(ray.get(ref))
            except ray.exceptions.RayError as e:
                results.append(_lost(fn, item, i, e))
        return results

    def _actor_count(self, ray) -> int:
        if self.num_actors is not None:
            return self.num_actors
        resources = ray.cluster_resources()
        counts = [int(resources.get("CPU", 1) // self.num_cpus_per_task)] if self.num_cpus_per_task > 0 else []
        if self.num_gpus_per_task > 0:
            counts.append(int(resources.get("GPU", 0) // self.num_gpus_per_task))
        return max(1, min(counts) if counts else 1)

    def _pool(self, ray) -> list:
        actors = self._state.get("actors")
        if actors is None:
            cls = ray.remote(max_restarts=-1, max_task_retries=self.max_retries, **self._options())(_Evaluator)
            actors = [cls.remote() for _ in range(self._actor_count(ray))]
            self._state["actors"] = actors
            self._state["warm"] = {}
        return actors

    def _by_actors(self, ray, fn: Callable, fn_ref: Any, items: list) -> list:
        actors = self._pool(ray)
        warm: dict[Any, set[int]] = self._state["warm"]
        while len(warm) > 4096:  # a long search: forget the oldest specs
            del warm[next(iter(warm))]
        results: list[Any] = [None] * len(items)
        waiting = list(range(len(items)))
        pending: dict[Any, tuple[int, int]] = {}

        def submit(a: int) -> None:
            i = _pick(waiting, items, warm, a)
            waiting.remove(i)
            warm.setdefault(_compile_key(items[i]), set()).add(a)
            pending[actors[a].run.remote(fn_ref, items[i])] = (i, a)

        for a in range(min(len(actors), len(waiting))):  # one call in flight per actor
            submit(a)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayError as e:
                results[i] = _lost(fn, items[i], i, e)
                warm = {k: v - {a} for k, v in warm.items()}  # a restarted actor has lost its compiled steps
                self._state["warm"] = warm
            if waiting:
                submit(a)
        return results


def _compile_key(item: Any) -> Any:
    """What decides a member's compiled steps (spec, batch size, optimiser type); None when unknown."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Candidate):
        c = item[1]
        return (c.graph.spec, c.batch_size, type(c.optimiser))
    return None


def _pick(waiting: list[int], items: list, warm: dict[Any, set[int]], actor: int) -> int:
    """The member a free actor takes: the first (in population order) whose steps it has compiled, else the first
    that no actor has compiled, else the first. Only where members run depends on this, never what they score."""
    fresh = None
    for i in waiting:
        owners = warm.get(_compile_key(items[i]), set())
        if actor in owners:
            return i
        if fresh is None and not owners:
            fresh = i
    return waiting[0] if fresh is None else fresh
