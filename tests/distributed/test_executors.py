import distributed_scenario as scenario
import jax
import pytest

import naivega_jax as ng


def test_local_executor_maps_in_order(key):
    pop = scenario.population(key, widths=(3, 4, 5))
    fitness = ng.SizeFitness()
    assert (
        ng.evolution.evaluate(key, fitness, pop, executor=ng.distributed.LocalExecutor()).fitnesses
        == ng.evolution.evaluate(key, fitness, pop).fitnesses
    )
    assert ng.distributed.LocalExecutor()(lambda i: 2 * i, [3, 1, 2]) == [6, 2, 4]
    with pytest.raises(TypeError, match="fn must be callable"):
        ng.distributed.LocalExecutor()(3, [1])


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("local", {}, ng.distributed.LocalExecutor()),
        ("devices", {}, ng.distributed.DeviceExecutor()),
        ("devices", {"num_workers": 1}, ng.distributed.DeviceExecutor(1)),
    ],
)
def test_make_executor_by_name(kind, kwargs, expected):
    assert ng.distributed.make_executor(kind, **kwargs) == expected


def test_make_executor_ray_settings():
    local = ng.distributed.make_executor("ray", num_workers=2, max_retries=3)
    assert (local.address, local.num_cpus, local.max_retries, local.actors) == (None, 2, 3, True)
    remote = ng.distributed.make_executor("ray", ray_address="auto", num_workers=4, num_gpus_per_task=0.5, actors=False)
    assert (remote.address, remote.num_cpus, remote.num_gpus_per_task, remote.actors) == ("auto", None, 0.5, False)


def test_make_executor_errors():
    with pytest.raises(ValueError, match=r"local.*devices.*ray.*'threads'"):
        ng.distributed.make_executor("threads")
    with pytest.raises(ValueError, match="only for kind='ray'"):
        ng.distributed.make_executor("devices", ray_address="auto")
    with pytest.raises(ValueError, match="num_gpus_per_task is only for kind='ray'"):
        ng.distributed.make_executor("devices", num_gpus_per_task=1)
    with pytest.raises(ValueError, match="num_workers"):
        ng.distributed.make_executor("ray", num_workers=0)
    with pytest.raises(TypeError, match="num_workers"):
        ng.distributed.make_executor("local", num_workers=1.5)


def test_ray_executor_argument_checks():
    with pytest.raises(ValueError, match="max_retries must be an int >= 0, got -1"):
        ng.distributed.RayExecutor(max_retries=-1)
    with pytest.raises(ValueError, match="num_gpus_per_task"):
        ng.distributed.RayExecutor(num_gpus_per_task=-0.5)
    with pytest.raises(TypeError, match="address"):
        ng.distributed.RayExecutor(address=6379)
    with pytest.raises(TypeError, match="actors"):
        ng.distributed.RayExecutor(actors="yes")
    assert ng.distributed.RayExecutor()(len, []) == []  # nothing to do starts no cluster


def test_workers_without_gpus_use_the_cpu_and_gpu_sharing_turns_off_preallocation():
    assert ng.distributed.RayExecutor()._options()["runtime_env"] == {"env_vars": {"JAX_PLATFORMS": "cpu"}}
    assert "runtime_env" not in ng.distributed.RayExecutor(num_gpus_per_task=1)._options()
    assert ng.distributed.RayExecutor(env_vars={"JAX_PLATFORMS": "cuda,cpu"})._options()["runtime_env"]["env_vars"] == {
        "JAX_PLATFORMS": "cuda,cpu"
    }
    shared = ng.distributed.RayExecutor(num_gpus_per_task=0.25, env_vars={"A": "1"})._options()
    assert shared["num_gpus"] == 0.25
    assert shared["runtime_env"] == {"env_vars": {"A": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}}


def test_a_free_actor_takes_a_member_it_has_compiled_then_a_new_spec_then_the_first():
    from naivega_jax.distributed._ray import _compile_key, _pick

    pop = scenario.population(jax.random.key(0), widths=(3, 4, 5, 3))
    items = [(jax.random.key(i), c) for i, c in enumerate(pop)]
    w3, w4 = _compile_key(items[0]), _compile_key(items[1])
    assert w3 == _compile_key(items[3]) != w4
    warm = {w3: {0}, w4: {1}}
    assert _pick([1, 2, 3], items, warm, 0) == 3  # actor 0 has width 3 compiled
    assert _pick([1, 2, 3], items, warm, 1) == 1  # actor 1 has width 4
    assert _pick([1, 2], items, warm, 2) == 2  # actor 2 has nothing: the spec nobody compiled yet
    assert _pick([1, 3], items, warm, 2) == 1  # all compiled elsewhere: the first waiting member
    assert _compile_key(3) is None and _pick([0, 1], [3, 4], {}, 0) == 0
