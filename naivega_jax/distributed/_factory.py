"""``make_executor``: an executor by name, for ``fit`` and the command line."""

from __future__ import annotations

from ..evolution import Executor
from ._devices import DeviceExecutor
from ._local import LocalExecutor
from ._ray import RayExecutor

EXECUTORS = ("local", "devices", "ray")


def make_executor(
    kind: str,
    *,
    ray_address: str | None = None,
    num_workers: int | None = None,
    num_gpus_per_task: float = 0,
    max_retries: int = 1,
    actors: bool = True,
) -> Executor:
    """The executor named ``kind``: ``"local"``, ``"devices"`` or ``"ray"`` (``naivega fit --executor KIND``).

    Args:
        kind: ``"local"`` (``ng.distributed.LocalExecutor``: this process), ``"devices"``
            (``ng.distributed.DeviceExecutor``: every device
            of ``jax.devices()``, or the first ``num_workers``), ``"ray"`` (``ng.distributed.RayExecutor``).
        ray_address: the Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None starts a local Ray with
            ``num_workers`` CPUs (all if None). Only for ``"ray"``.
        num_workers: devices to use (``"devices"``), or CPUs of a local Ray (``"ray"``).
        num_gpus_per_task, max_retries, actors: as ``ng.distributed.RayExecutor``.

    Example:
        >>> import naivega_jax as ng
        >>> ng.distributed.make_executor("local"), ng.distributed.make_executor("devices", num_workers=1)
        (LocalExecutor(), DeviceExecutor(devices=1))
    """
    if kind not in EXECUTORS:
        raise ValueError(f"make_executor: kind must be one of {EXECUTORS}, got {kind!r}")
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)):
        raise TypeError(f"make_executor: num_workers must be None or a positive int, got {num_workers!r}")
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"make_executor: num_workers must be a positive int, got {num_workers!r}")
    if ray_address is not None and kind != "ray":
        raise ValueError(f"make_executor: ray_address is only for kind='ray', got kind={kind!r}")
    if kind != "ray" and num_gpus_per_task:
        raise ValueError(f"make_executor: num_gpus_per_task is only for kind='ray', got kind={kind!r}")
    if kind == "local":
        return LocalExecutor()
    if kind == "devices":
        return DeviceExecutor(num_workers)
    return RayExecutor(
        address=ray_address,
        num_cpus=num_workers if ray_address is None else None,
        num_gpus_per_task=num_gpus_per_task,
        max_retries=max_retries,
        actors=actors,
    )
