import os
import pickle
import subprocess
import sys
from pathlib import Path

import distributed_scenario as scenario
import jax
import pytest

import naivega_jax as ng

HERE = Path(__file__).parent


def fake_devices_run(tmp_path, mode):
    """Runs device_run.py with 4 fake CPU devices (XLA_FLAGS must be set before jax is imported)."""
    out = tmp_path / "report.pkl"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "device_run.py"), str(out), mode], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out, "rb") as f:
        return pickle.load(f)


def test_four_devices_give_the_in_process_population(tmp_path):
    report = fake_devices_run(tmp_path, "fast")
    assert len(report["devices"]) == 4
    local, spread = report["runs"]["local"], report["runs"]["devices4"]
    scenario.assert_same(local, spread, atol=1e-6)
    assert len(set(local["fitness"])) > 1  # members differ: the comparison is not trivial
    # member i trained on device i % 4 (by population index), inside that device's default-device context
    assert [w["arrays"] for w in spread["where"]] == [[0], [1], [2], [3]]
    assert [w["default"] for w in spread["where"]] == [0, 1, 2, 3]
    assert [w["arrays"] for w in local["where"]] == [[0]] * 4
    # results come back to the caller's device, so mutation and crossover never mix devices
    assert spread["result_devices"] == [0]
    assert report["copies"] == {0: ([0], True), 1: ([1], True)}  # a fitness's training data: a copy per device


@pytest.mark.slow
def test_width_changes_on_two_and_four_devices_give_the_in_process_population(tmp_path):
    report = fake_devices_run(tmp_path, "full")
    local = report["runs"]["local"]
    assert len(set(local["specs"])) > 1
    scenario.assert_same(local, report["runs"]["devices4"], atol=1e-6)
    scenario.assert_same(local, report["runs"]["devices2"], atol=1e-6)


def test_one_device_runs_in_the_calling_thread_with_results_in_order(key):
    pop = scenario.population(key, widths=(3, 4, 5))
    seen = ng.distributed.DeviceExecutor()(lambda item: (item[0], item[1].graph.nout("h")), list(enumerate(pop)))
    assert seen == [(0, 3), (1, 4), (2, 5)]


def test_errors_are_raised_lowest_index_first():
    def boom(i):
        if i in (1, 2):
            raise RuntimeError(f"member {i}")
        return i

    with pytest.raises(RuntimeError, match="member 1"):
        ng.distributed.DeviceExecutor()(boom, [0, 1, 2])


def test_device_executor_argument_checks():
    with pytest.raises(ValueError, match="devices=5"):
        ng.distributed.DeviceExecutor(5)
    with pytest.raises(TypeError, match="jax devices"):
        ng.distributed.DeviceExecutor(["gpu0"])
    with pytest.raises(ValueError, match="twice"):
        ng.distributed.DeviceExecutor([jax.devices()[0]] * 2)
    with pytest.raises(TypeError, match="sequence"):
        ng.distributed.DeviceExecutor()(len, "abc")
    assert ng.distributed.DeviceExecutor()(len, []) == []
