"""Why the full tier's steps are slower than the max tier's: fusions that write into an operand's buffer.

XLA's buffer assignment lets an elementwise fusion write its result into the buffer of an operand that dies there
(in place). XLA:CPU's older fusion emitters (the full tier) give the output and that operand separate pointers that
LLVM cannot prove apart, so LLVM's loop vectoriser guards the vector loop with a runtime overlap check; for an
in-place fusion the check always finds an overlap and the scalar loop runs. The newer emitters (the max tier) emit
such loops without the check.

This lowers the engine's train step (as the search trains it, Adam, the flat optimiser layout, no activation
utilities: like ``bench_flax.py``) for each of ``--models`` architectures of ``bench_flax.architectures``, compiles
it at the full tier (dumping its buffer assignment) and at the max tier, profiles ``--steps`` steps of each with
XLA's per-kernel trace events, and splits the fusions' time per step into those whose output shares its operand's
buffer (in place) and the others. Also prints the time in convolutions and the whole step.

Run: ``.venv/bin/python benchmarks/studies/analyse_inplace_fusions.py [--models 3] [--steps 100] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: helpers

_VALUE = re.compile(r"value: <\d+ (\S+) @0> \(size=(\d+),offset=(\d+)\)")
_FUSION = re.compile(r"\s*%(\S+) = \S+ fusion\((.*?)\), kind=")


def inplace_fusions(dump_dir: str) -> dict[str, bool]:
    """Per fusion of the dumped train step's entry computation: whether its output shares an operand's buffer."""
    (assignment,) = glob.glob(os.path.join(dump_dir, "*train_step*buffer-assignment.txt"))
    (optimised,) = glob.glob(os.path.join(dump_dir, "*train_step*cpu_after_optimizations.txt"))
    slices, allocation = {}, None
    with open(assignment) as f:
        for line in f:
            if line.startswith("allocation "):
                allocation = int(line.split()[1].rstrip(":"))
            elif (m := _VALUE.search(line)) and allocation is not None:
                slices.setdefault(m.group(1), (allocation, int(m.group(3)), int(m.group(2))))
    with open(optimised) as f:
        text = f.read()
    result = {}
    for line in text[text.index("ENTRY") :].splitlines():
        if m := _FUSION.match(line):
            name, operands = m.group(1), re.findall(r"%([\w.\-]+)", m.group(2))
            own = slices.get(name)
            result[name] = own is not None and any(slices.get(o) == own for o in operands)
    return result


def kernel_times(trace_dir: str, steps: int) -> collections.Counter:
    """Microseconds per step of every trace event in the profile under ``trace_dir``."""
    (path,) = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    with gzip.open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    times = collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            times[e["name"]] += e.get("dur", 0) / steps
    return times


def analyse(candidate, x, y, steps: int, workdir: str) -> dict:
    from bench_search import _without_utility
    from probe_compile_options import args_for

    import naivega_jax as ng
    from naivega_jax.train import _engine as E
    from naivega_jax.train._cache import tier_options

    graph, batch = _without_utility(candidate.graph), candidate.batch_size
    carry, _, static = args_for(graph, batch)  # Adam 1e-3, the engine's flat layout, softmax cross-entropy
    mask = np.ones((batch,), np.float32)
    rows = [((x[i * batch : (i + 1) * batch],), y[i * batch : (i + 1) * batch], mask, np.int32(i)) for i in range(8)]
    key = jax.random.key(0)
    lowered = E._train_step.lower(carry, rows[0], key, **static)
    row = {"nparams": ng.nparams(graph), "vertices": len(graph.vertex_names), "batch_size": batch}
    dump = os.path.join(workdir, f"dump-{row['nparams']}-{batch}")
    times = {}
    for tier in ("full", "max"):
        options = {**tier_options("cpu", tier), "xla_cpu_enable_xprof_traceme": True}
        if tier == "full":
            options["xla_dump_to"] = dump
        compiled = lowered.compile(compiler_options=options)
        carry = args_for(graph, batch)[0]
        for i in range(10):
            carry, _ = compiled(carry, rows[i % len(rows)], key)
        jax.block_until_ready(carry)
        trace = os.path.join(workdir, f"trace-{row['nparams']}-{batch}-{tier}")
        with jax.profiler.trace(trace, create_perfetto_trace=True):
            for i in range(steps):
                carry, _ = compiled(carry, rows[i % len(rows)], key)
            jax.block_until_ready(carry)
        times[tier] = kernel_times(trace, steps)
    inplace = inplace_fusions(dump)
    for tier, t in times.items():
        row[f"{tier}_step_us"] = round(t.get("ThunkExecutor::Execute (wait for completion)", 0.0))
        row[f"{tier}_inplace_fusion_us"] = round(sum(t.get(n, 0.0) for n, ip in inplace.items() if ip))
        row[f"{tier}_other_fusion_us"] = round(sum(t.get(n, 0.0) for n, ip in inplace.items() if not ip))
        row[f"{tier}_convolution_us"] = round(sum(v for n, v in t.items() if "conv" in n and n not in inplace))
    row["inplace_fusions"] = sum(inplace.values())
    row["fusions"] = len(inplace)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    from bench_flax import architectures

    import naivega_jax as ng
    from naivega_jax.autofit import prepare_data

    jax.config.update("jax_enable_compilation_cache", False)  # a disk-cache hit would dump nothing
    env = {"jax": jax.__version__, "backend": jax.default_backend(), "cpus": os.cpu_count(), "args": vars(args)}
    print(json.dumps(env), flush=True)
    x, y, *_ = ng.datasets.load("mnist1d")
    x_tr, y_tr, *_ = prepare_data(x, y, 0.1)
    seen, rows = set(), []
    with tempfile.TemporaryDirectory(prefix="ng-inplace-") as workdir:
        for cand in architectures(args.seed, args.generations, 16):
            if (cand.graph.spec, cand.batch_size) in seen or len(rows) >= args.models:
                continue
            seen.add((cand.graph.spec, cand.batch_size))
            rows.append(analyse(cand, np.asarray(x_tr), np.asarray(y_tr), args.steps, workdir))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
