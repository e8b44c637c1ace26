"""One generation's fitness evaluation: in-process vs Ray (tasks and actors) vs DeviceExecutor, and the overhead
that Ray adds to each candidate evaluation.

Population: ``--population`` Dense graphs 64 -> h -> 10 with distinct widths h (so every member is a new spec),
Adam(1e-2), batch 32; fitness: ``TrainThenFitness`` over digits (1437 training images flattened, ``--epochs``
epochs) then ``AccuracyFitness`` on the 360 test images. Measured:

* 1st generation: the first evaluation (every spec compiles; for Ray also starting workers and importing JAX);
* 2nd: the second evaluation of the same population with a new key (a spec compiled by one Ray worker is still
  cold in another);
* warm: after three more evaluations, the median of ``--repeats`` rounds in which the executors take turns with an
  in-process evaluation (load from other processes falls on both alike);
* overhead per member: a fitness that does no work (``Echo``: returns the candidate with fitness 1) sent through
  each executor, so the time is serialising the member there and back, scheduling and gathering; and the pickle
  sizes and pickle+unpickle seconds of one ``(key, candidate)`` item and of the fitness;
* devices: the same cold/warm comparison in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
  (4 fake CPU devices on the same cores), in-process vs ``DeviceExecutor`` over 4 and 2 devices.

Run: ``.venv/bin/python benchmarks/bench_distributed.py`` (about 3 minutes on 2 CPU cores; needs ``ray``:
``pip install 'naivega-jax[ray]'``). ``--json`` prints the raw numbers. Writes ``bench_distributed.json`` and
``.md`` under ``--out`` (``benchmarks/_harness.py``: one row per executor, the warm speed-ups and per-member
overheads as the summary). ``--quick``: population 2, 1 epoch, 1 warm round.

Not public API, on purpose: the pickle sizes are those of what ``ng.evolution.evaluate`` sends per member,
``naivega_jax.evolution.internal.ScoreMember``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import statistics
import subprocess
import sys
import time

import jax

import naivega_jax as ng

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness


@dataclasses.dataclass(frozen=True)
class Echo:
    """A fitness that does no work: what is left of an evaluation is the executor's own cost."""

    def __call__(self, key, candidate):
        return candidate.replace(fitness=1.0)


def population(n: int) -> ng.Population:
    members = []
    for i in range(n):
        inp = ng.input_vertex("in", shape=(64,))
        h = ng.vertex("h", ng.Dense(16 + 8 * i, activation="relu"), inp)
        graph = ng.build_graph(jax.random.key(i), inputs=inp, outputs=ng.vertex("out", ng.Dense(10), h))
        members.append(ng.Candidate(graph, optimiser=ng.Adam(1e-2), batch_size=32))
    return ng.Population(members)


def fitness(epochs: int) -> ng.TrainThenFitness:
    x_tr, y_tr, x_te, y_te = ng.datasets.load("digits")
    train = (x_tr.reshape(len(x_tr), -1), y_tr)
    val = (x_te.reshape(len(x_te), -1), y_te)
    return ng.TrainThenFitness(train, fitness=ng.AccuracyFitness(val, batch_size=120), epochs=epochs)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def warm_up(executor, fit, pop) -> dict:
    """Seconds of the first and the second evaluation; three more follow so that every worker is warm."""
    scored = []
    seconds = [
        timed(lambda r=r: scored.append(ng.evolution.evaluate(jax.random.key(r), fit, pop, executor=executor)))
        for r in range(5)
    ]
    failures = [c.info["failure"] for p in scored for c in p if "failure" in c.info]
    if failures:
        raise RuntimeError(f"bench_distributed: evaluations failed: {failures[:3]}")
    return {"cold_s": seconds[0], "second_s": seconds[1], "fitness": list(scored[0].fitnesses)}


def interleaved(executors: dict, fit, pop, rounds: int) -> dict:
    """Median seconds of a warm evaluation (real fitness) and of a no-op one (``Echo``) per executor, the executors
    taking turns within each round so that load from other processes falls on all of them alike."""
    warm = {name: [] for name in executors}
    echo = {name: [] for name in executors}
    for r in range(rounds):
        for name, executor in executors.items():
            warm[name].append(
                timed(lambda e=executor, r=r: ng.evolution.evaluate(jax.random.key(100 + r), fit, pop, executor=e))
            )
            echo[name].append(
                timed(lambda e=executor: ng.evolution.evaluate(jax.random.key(0), Echo(), pop, executor=e))
            )
    return {
        name: {
            "warm_s": statistics.median(warm[name]),
            "warm_all_s": warm[name],
            "echo_per_member_ms": 1e3 * statistics.median(echo[name]) / len(pop),
        }
        for name in executors
    }


def pickling(fit, pop) -> dict:
    from naivega_jax.evolution.internal import ScoreMember

    fn = ScoreMember(fit, 0.0)
    item = (jax.random.key(0), pop[len(pop) // 2])
    result = fn(item)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        pickle.loads(pickle.dumps(item))
        pickle.loads(pickle.dumps(result))
        times.append(time.perf_counter() - t0)
    return {
        "item_bytes": len(pickle.dumps(item)),
        "result_bytes": len(pickle.dumps(result)),
        "fitness_bytes": len(pickle.dumps(fn)),
        "item_and_result_roundtrip_ms": 1e3 * statistics.median(times),
    }


def ray_part(args) -> dict:
    import ray

    fit, pop = fitness(args.epochs), population(args.population)
    local = ng.distributed.LocalExecutor()
    out = {"local": warm_up(local, fit, pop), "pickle": pickling(fit, pop)}
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out["ray_start_s"] = time.perf_counter() - t0
    try:  # one Ray executor at a time: actors hold the cluster's 2 CPUs while they live
        for name, executor in (
            ("ray_tasks", ng.distributed.RayExecutor(actors=False)),
            ("ray_actors", ng.distributed.RayExecutor()),
        ):
            out[name] = warm_up(executor, fit, pop)
            if out[name]["fitness"] != out["local"]["fitness"]:
                raise RuntimeError(f"bench_distributed: {name} scored differently from in-process")
            turns = interleaved({"local": local, name: executor}, fit, pop, args.repeats)
            out[name].update(turns[name])
            out[name]["local"] = turns["local"]
            executor.close()
    finally:
        ray.shutdown()
    return out


def devices_part(args) -> dict:
    fit, pop = fitness(args.epochs), population(args.population)
    executors = {
        "local": ng.distributed.LocalExecutor(),
        "devices4": ng.distributed.DeviceExecutor(4),
        "devices2": ng.distributed.DeviceExecutor(2),
    }
    out = {"devices": len(jax.devices())}
    for name, executor in executors.items():
        ng.train.clear_compile_cache()  # every executor starts cold
        out[name] = warm_up(executor, fit, pop)
    for name, turns in interleaved(executors, fit, pop, args.repeats).items():
        out[name].update(turns)
    return out


def table(res: dict) -> list[dict]:
    """One row per executor: cold, second and warm seconds, the in-process warm seconds of the same rounds, the
    speed-up over it and the no-op round trip per member."""
    r, d = res["ray"], res["devices"]
    rows = []

    def row(key, label, m, local):
        rows.append(
            {
                "executor": key,
                "label": label,
                "cold_s": m["cold_s"],
                "second_s": m["second_s"],
                "warm_s": m["warm_s"],
                "local_warm_s": local["warm_s"],
                "speedup": local["warm_s"] / m["warm_s"],
                "echo_per_member_ms": m["echo_per_member_ms"],
            }
        )

    local = {**r["local"], **r["ray_tasks"]["local"]}
    row("local", "in-process (LocalExecutor)", local, local)
    row("ray_tasks", "Ray tasks, 2 CPUs", r["ray_tasks"], r["ray_tasks"]["local"])
    row("ray_actors", "Ray actors, 2 CPUs", r["ray_actors"], r["ray_actors"]["local"])
    row("local_4_devices", "in-process, 4 fake CPU devices", d["local"], d["local"])
    row("devices4", "DeviceExecutor, 4 fake CPU devices", d["devices4"], d["local"])
    row("devices2", "DeviceExecutor, 2 fake CPU devices", d["devices2"], d["local"])
    return rows


def markdown(res: dict, args) -> str:
    n = args.population
    r = res["ray"]
    rows = [
        "| executor | 1st generation (s) | 2nd (s) | warm (s) | in-process warm, same rounds (s) | speed-up | "
        "no-op round trip per member (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in table(res):
        rows.append(
            f"| {m['label']} | {m['cold_s']:.2f} | {m['second_s']:.2f} | {m['warm_s']:.3f} | {m['local_warm_s']:.3f} | "
            f"{m['speedup']:.2f}x | {m['echo_per_member_ms']:.2f} |"
        )
    p = r["pickle"]
    rows.append("")
    rows.append(
        f"Population {n}, {args.epochs} epochs per member. "
        f"Ray start (`ray.init(num_cpus=2)`): {r['ray_start_s']:.1f} s. "
        f"One member pickled: {p['item_bytes']} B out, {p['result_bytes']} B back, "
        f"{p['item_and_result_roundtrip_ms']:.2f} ms to pickle and unpickle both; the fitness with its data: "
        f"{p['fitness_bytes'] / 1e6:.2f} MB, put in the object store once per generation."
    )
    return "\n".join(rows)


def main() -> None:
    parser = _harness.parser(__doc__, quick="population 2, 1 epoch, 1 warm round")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved warm rounds")
    parser.add_argument("--part", choices=("all", "ray", "devices"), default="all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.population, args.epochs, args.repeats = min(args.population, 2), 1, 1
    if args.part == "devices":
        print(json.dumps(devices_part(args)))
        return
    if args.part == "ray":
        print(json.dumps(ray_part(args)))
        return
    load = os.getloadavg()
    res = {"ray": ray_part(args)}
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, __file__, "--part", "devices", *sys.argv[1:]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    res["devices"] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["load_average"] = [load, os.getloadavg()]
    print(json.dumps(res, indent=1) if args.json else markdown(res, args))
    print(f"\nload average (1, 5, 15 min) before {load}, after {os.getloadavg()}; {os.cpu_count()} CPUs")
    rows = table(res)
    summary = {f"{m['executor']}_speedup": m["speedup"] for m in rows[1:]}
    summary |= {f"{m['executor']}_echo_per_member_ms": m["echo_per_member_ms"] for m in rows}
    summary["ray_start_s"] = res["ray"]["ray_start_s"]
    _harness.write_result(
        "bench_distributed",
        args,
        summary=summary,
        rows=[{k: v for k, v in m.items() if k != "label"} for m in rows],
        extra={"raw": res},
    )


if __name__ == "__main__":
    main()
