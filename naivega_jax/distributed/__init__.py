"""Executors for fitness evaluation: in-process, several devices, Ray.

An executor is called as ``executor(fn, items) -> results`` (one result per item, in order); ``ng.evolution.evaluate``,
``ng.evolve`` and ``ng.autofit.fit`` take one as ``executor=``. Member keys come from population indices, so every
executor gives the same population.
"""

from ._devices import DeviceExecutor
from ._factory import make_executor
from ._local import LocalExecutor
from ._ray import RayExecutor

__all__ = ["DeviceExecutor", "LocalExecutor", "RayExecutor", "make_executor"]
