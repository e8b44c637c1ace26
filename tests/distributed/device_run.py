"""Run by test_device_executor.py in a subprocess whose XLA_FLAGS fake several CPU devices (they must be set
before jax is imported): evolves in-process and with ng.distributed.DeviceExecutor, pickles both summaries to
argv[1]."""

import os
import pickle
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import distributed_scenario as scenario
import jax
import numpy as np

import naivega_jax as ng
from naivega_jax.train import _engine


def device_copies() -> dict:
    """A train fitness's training data off CPU: one copy per device, made once and reused by every candidate."""
    x = np.arange(6.0, dtype=np.float32)
    fit = ng.TrainAccuracyFitness((x[:, None], np.zeros(6, np.int32)))
    original, _engine._batches_on_device = _engine._batches_on_device, lambda: True  # as on a GPU
    seen = {}
    try:
        for d in jax.devices()[:2]:
            with jax.default_device(d):
                first, again = fit._data.here()[0], fit._data.here()[0]
                seen[d.id] = (sorted(e.id for e in first.devices()), first is again)
    finally:
        _engine._batches_on_device = original
    return seen


def main(out: str, mode: str) -> None:
    structural = mode == "full"
    widths = (8, 12, 16, 20) if structural else (12, 12, 12, 12)
    fit = scenario.WhereFitness(scenario.fitness(validate=structural))
    report = {"devices": [str(d) for d in jax.devices()], "runs": {}, "seconds": {}, "copies": device_copies()}
    executors = {"local": None, "devices4": ng.distributed.DeviceExecutor()}
    if structural:
        executors["devices2"] = ng.distributed.DeviceExecutor(2)
    for name, executor in executors.items():
        t0 = time.perf_counter()
        pop = scenario.run(jax.random.key(0), fit, executor, widths=widths, structural=structural)
        report["seconds"][name] = time.perf_counter() - t0
        summary = scenario.summary(pop)
        summary["where"] = [c.info["where"] for c in pop]
        summary["result_devices"] = sorted(
            {d.id for c in pop for a in jax.tree_util.tree_leaves(c.graph) for d in a.devices()}
        )
        report["runs"][name] = summary
    with open(out, "wb") as f:
        pickle.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
