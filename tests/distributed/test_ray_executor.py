"""One local Ray cluster (2 CPUs) for the whole module; workers are separate processes."""

import os
import time

import distributed_scenario as scenario
import jax
import numpy as np
import pytest

import naivega_jax as ng

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # ray.init starts its processes

GENERATIONS = 3


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the workers cannot import this test directory: ship the scenario's classes by value
    ray.cloudpickle.register_pickle_by_value(scenario)
    yield
    ray.cloudpickle.unregister_pickle_by_value(scenario)
    ray.shutdown()


@pytest.fixture(scope="module")
def fit():
    return scenario.fitness(validate=False)


@pytest.fixture(scope="module")
def reference(fit):
    return scenario.summary(scenario.run(jax.random.key(0), fit, widths=(12,) * 4, structural=False))


def run_on(executor, fitness):
    return scenario.summary(scenario.run(jax.random.key(0), fitness, executor, widths=(12,) * 4, structural=False))


def dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_tasks_give_the_in_process_population(cluster, fit, reference):
    assert len(set(reference["fitness"])) > 1
    scenario.assert_same(reference, run_on(ng.distributed.RayExecutor(actors=False), fit))


def test_a_worker_killed_mid_generation_is_retried_and_changes_nothing(cluster, fit, reference, tmp_path):
    flag = tmp_path / "killed"
    killer = scenario.KillOnce(fit, str(flag), generation=2)
    scenario.assert_same(reference, run_on(ng.distributed.RayExecutor(actors=False, max_retries=1), killer))
    assert dead(int(flag.read_text()))  # a worker really died, during generation 2


def test_actors_give_the_in_process_population_through_a_kill(cluster, fit, reference, tmp_path):
    flag = tmp_path / "killed"
    killer = scenario.KillOnce(fit, str(flag), generation=3)
    with ng.distributed.RayExecutor(actors=True, num_actors=2) as executor:
        scenario.assert_same(reference, run_on(executor, killer))
        pids = ray.get([a.pid.remote() for a in executor._state["actors"]])
    assert dead(int(flag.read_text())) and int(flag.read_text()) not in pids  # the actor came back as a new process
    assert ray.is_initialized()  # the executor did not start this Ray, so it leaves it running


@pytest.mark.slow
def test_a_member_that_kills_every_worker_gets_the_invalid_fitness(cluster, fit, caplog):
    pop = scenario.population(jax.random.key(1), widths=(12, 7, 12))
    executor = ng.distributed.RayExecutor(actors=False, max_retries=1)
    with caplog.at_level("WARNING", logger="naivega_jax"):
        scored = ng.evolution.evaluate(
            jax.random.key(2), scenario.KillAlways(fit, width=7), pop, executor=executor, invalid_fitness=-1.0
        )
    plain = ng.evolution.evaluate(jax.random.key(2), fit, pop)
    assert scored.fitnesses[1] == -1.0
    assert "member 1" in scored[1].info["failure"] and "Worker" in scored[1].info["failure"]
    assert scored[1].lineage[-1]["failure"] == scored[1].info["failure"]
    assert scored.fitnesses[0::2] == plain.fitnesses[0::2]  # the others are scored as usual
    assert any("member 1" in r.getMessage() for r in caplog.records)


def test_a_generic_function_whose_worker_dies_raises(cluster):
    with pytest.raises(RuntimeError, match="member 0"):
        ng.distributed.RayExecutor(actors=False, max_retries=0)(scenario.kill_self, [0])


@pytest.mark.slow
def test_the_command_line_on_ray_finds_the_in_process_population(cluster, tmp_path):
    from naivega_jax.cli import main

    x, y, xt, yt = ng.datasets.load("digits")
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=x[:150], y_train=y[:150], x_test=xt[:50], y_test=yt[:50])
    common = ["fit", "--dataset", str(npz), "--generations", "2", "--population", "3", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0
    local, remote = ng.load_population(tmp_path / "local"), ng.load_population(tmp_path / "ray")
    assert remote.generation == local.generation == 2
    assert [c.graph.spec for c in remote] == [c.graph.spec for c in local]
    assert remote.fitnesses == local.fitnesses
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU") == 2  # the command closed its executor: the actors let go
