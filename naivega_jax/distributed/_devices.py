"""Several devices of one host: one thread per device, each member's arrays committed to its device."""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ..evolution import Candidate
from ._local import check_call


def place(obj: Any, device: jax.Device) -> Any:
    """``obj`` with its arrays (a candidate's graph, keys, pytrees of arrays) committed to ``device``."""
    if isinstance(obj, Candidate):
        return obj.replace(graph=jax.device_put(obj.graph, device))
    if isinstance(obj, (tuple, list)) and not hasattr(obj, "_fields"):
        return type(obj)(place(o, device) for o in obj)
    return jax.tree_util.tree_map(
        lambda a: jax.device_put(a, device) if isinstance(a, (jax.Array, np.ndarray)) else a, obj
    )


def _resolve_devices(devices: Any) -> tuple:
    if devices is None:
        return tuple(jax.devices())
    if isinstance(devices, bool):
        raise TypeError(f"DeviceExecutor: devices must be None, an int or a sequence of jax devices, got {devices!r}")
    if isinstance(devices, (int, np.integer)):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"DeviceExecutor: devices={devices} but this process has {len(available)} device(s) {available}"
            )
        return tuple(available[: int(devices)])
    found = tuple(devices)
    if not found or not all(isinstance(d, jax.Device) for d in found):
        raise TypeError(f"DeviceExecutor: devices must be a non-empty sequence of jax devices, got {devices!r}")
    if len(set(found)) != len(found):
        raise ValueError(f"DeviceExecutor: devices lists a device twice: {found}")
    return found


def home_device() -> jax.Device:
    """Where the calling thread's computations run: ``jax.default_device`` if set, else the first device."""
    default = jax.config.jax_default_device  # type: ignore[attr-defined]  # jax's Config declares its options at run time
    if isinstance(default, jax.Device):
        return default
    return jax.devices(default)[0] if isinstance(default, str) else jax.devices()[0]


@dataclasses.dataclass(frozen=True)
class DeviceExecutor:
    """Spreads the population over the devices of this host (several GPUs, or ``jax.devices()`` of any kind).

    Member ``i`` runs on ``devices[i % len(devices)]``: by population index, never by arrival order. One thread
    per device works through its members in population order inside ``jax.default_device(device)``, with the
    member's arrays (graph, key) committed to that device, so training and scoring run there; JAX releases the
    Python lock while a device computes, so the devices work at the same time. Results come back in population
    order, with their arrays moved to the caller's default device (so mutation and crossover never mix devices).

    The compiled train steps are cached per device (``ng.train_graph``'s cache keys include the placement): each
    device compiles a spec it has not seen. Members are trained one by one; batching several members into one
    vmapped, population-sharded computation is not done (the training engine trains one graph per call).

    Args:
        devices: None (every device of ``jax.devices()``), a count (the first ``n``), or a sequence of devices.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> pop = ng.Population([ng.Candidate(g), ng.Candidate(g)])
        >>> ex = ng.distributed.DeviceExecutor()
        >>> ng.evolution.evaluate(jax.random.key(0), ng.SizeFitness(), pop, executor=ex).fitnesses
        (9.0, 9.0)
    """

    devices: Any = None

    def __post_init__(self):
        if self.devices is not None and not isinstance(self.devices, (int, np.integer)):
            object.__setattr__(self, "devices", tuple(self.devices))
        _resolve_devices(self.devices)

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list:
        items = check_call(fn, items, "DeviceExecutor")
        devices = _resolve_devices(self.devices)
        home = home_device()
        results: list[Any] = [None] * len(items)
        errors: dict[int, BaseException] = {}

        def work(d: int) -> None:
            device = devices[d]
            with jax.default_device(device):
                for i in range(d, len(items), len(devices)):
                    try:
                        out = fn(place(items[i], device))
                    except Exception as e:  # reported after every device has finished, lowest index first
                        errors[i] = e
                        return
                    results[i] = place(out, home)

        used = min(len(devices), len(items))
        if used <= 1:
            if items:
                work(0)
        else:
            with concurrent.futures.ThreadPoolExecutor(used, thread_name_prefix="naivega-device") as pool:
                for future in [pool.submit(work, d) for d in range(used)]:
                    future.result()
        if errors:
            raise errors[min(errors)]
        return results
