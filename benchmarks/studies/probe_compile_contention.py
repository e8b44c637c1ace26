"""How much slower does a member train while the background thread compiles the next members' executables?

``fit`` compiles the members still to come in a background thread while one trains (``ng.evolution.evaluate(...,
precompile=True)``). That hides the compiles' latency, not their work: on a machine with few cores, the compiler
takes CPU that training would have used. This probe trains one member of MNIST-1D's default space (the member
drawn at ``--member`` by ``ng.autofit.initial_population``, as ``fit``'s first generation draws it) for
``--epochs`` epochs, ``--repeats`` times alone, then ``--repeats`` times while a thread compiles other members'
training executables one after the other (``ng.train.precompile_training``: each a new program, never a cache hit),
then alone again, and prints the seconds of each call and the median ratio.

    .venv/bin/python benchmarks/studies/probe_compile_contention.py

Run it with nothing else on the machine (about a minute on 2 cores). One line of JSON.
Findings: benchmarks/RESULTS.md, "Where the search's extra wall time goes" (session 17).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time

import jax

import naivega_jax as ng
from naivega_jax.autofit import FitSettings, default_space, initial_population, prepare_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--member", type=int, default=0, help="which member of the drawn population trains")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draw", type=int, default=60, help="members drawn (the others are compiled behind)")
    args = parser.parse_args()
    x, y, _, _ = ng.datasets.load("mnist1d")
    x_tr, y_tr, _, _, in_shape, classes = prepare_data(x, y, FitSettings().validation_split)
    pop = initial_population(jax.random.key(0), default_space(in_shape, int(classes.size)), in_shape, args.draw)
    member = pop[args.member]
    others = [c for i, c in enumerate(pop) if i != args.member]

    def train() -> float:
        t0 = time.perf_counter()
        ng.train_graph(
            jax.random.key(1),
            member.graph,
            x_tr,
            y_tr,
            optimiser=member.optimiser,
            batch_size=member.batch_size,
            epochs=args.epochs,
        )
        return time.perf_counter() - t0

    train()  # compiles it
    stop = threading.Event()
    compiled = []

    def compile_others() -> None:
        for c in others:
            if stop.is_set():
                return
            t0 = time.perf_counter()
            if ng.train.precompile_training(
                c.graph, x_tr, y_tr, optimiser=c.optimiser, batch_size=c.batch_size, epochs=args.epochs
            ):
                compiled.append(time.perf_counter() - t0)

    alone = [train() for _ in range(args.repeats)]
    thread = threading.Thread(target=compile_others, daemon=True)
    thread.start()
    time.sleep(0.5)  # the first compile is under way
    beside = [train() for _ in range(args.repeats)]
    busy = thread.is_alive()
    stop.set()
    thread.join()
    after = [train() for _ in range(args.repeats)]
    print(
        json.dumps(
            {
                "member": args.member,
                "nparams": ng.nparams(member.graph),
                "batch_size": member.batch_size,
                "epochs": args.epochs,
                "alone_s": [round(t, 3) for t in alone],
                "beside_compiles_s": [round(t, 3) for t in beside],
                "alone_after_s": [round(t, 3) for t in after],
                "ratio_median": round(statistics.median(beside) / statistics.median(alone + after), 3),
                "compiler_busy_throughout": busy,
                "compiles_behind": len(compiled),
                "compile_s_median": round(statistics.median(compiled), 3) if compiled else None,
                "nproc": os.cpu_count(),
                "cpu": platform.processor() or platform.machine(),
                "jax": jax.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
