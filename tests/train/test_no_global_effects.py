"""Library calls leave JAX's process-wide configuration alone; only ``ng.autofit.fit`` (and the CLI, which calls it)
switches the persistent compilation cache on, as ``ng.train.set_compilation_cache`` lets a user do."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import json, sys
import jax, jax.numpy as jnp, numpy as np, optax
import naivega_jax as ng

def config():
    return {k: repr(v) for k, v in jax.config.values.items()}

def cache_keys(values):
    return {k: v for k, v in values.items() if "cache" in k}
"""


def _run(tmp_path, body, **env):
    """Runs ``body`` in a fresh Python process (a fresh JAX) with the user cache directory in ``tmp_path``."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NAIVEGA_JAX_XLA_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    environ.update({"NAIVEGA_JAX_CACHE": str(tmp_path), "JAX_PLATFORMS": "cpu", **env})
    script = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_train_and_evaluate_leave_jax_configuration_unchanged(tmp_path):
    out = _run(
        tmp_path,
        """
        inp = ng.input_vertex("in", shape=(4,))
        g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        x = np.asarray(jax.random.normal(jax.random.key(1), (64, 4)))
        y = np.asarray(jax.random.randint(jax.random.key(2), (64,), 0, 3))
        before = config()
        r = ng.train_graph(jax.random.key(3), g, x, y, batch_size=16, epochs=2)
        acc = ng.evaluate_accuracy(r.graph, x, y)
        loss = ng.evaluate_loss(r.graph, x, y, optax.softmax_cross_entropy_with_integer_labels)
        after = config()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        print(json.dumps({"cache_before": cache_keys(before), "cache_after": cache_keys(after), "changed": changed,
                          "dir": ng.train.compilation_cache_dir(), "compiles": ng.train.engine_stats()["compiles"],
                          "acc": acc, "loss": loss}))
        """,
    )
    assert out["compiles"] >= 2  # the engine really compiled (train step and evaluation)
    assert 0.0 <= out["acc"] <= 1.0 and out["loss"] > 0
    assert out["cache_before"]["jax_compilation_cache_dir"] == "None"
    assert out["cache_after"] == out["cache_before"]
    assert out["changed"] == []
    assert out["dir"] is None
    assert not (tmp_path / "xla").exists()


FIT = """
x, y, _, _ = ng.datasets.load("digits")
conv = ng.VertexSpace(ng.ConvSpace(outsizes=[4], kernel_sizes=[3], activations=["relu"]))
head = ng.VertexSpace(ng.DenseSpace(10, "identity"), shielded=True)
space = ng.ArchSpaceChain(conv, ng.GlobalPoolSpace(), head)
before = ng.train.compilation_cache_dir()
ng.autofit.fit(x[:150], y[:150], key=jax.random.key(0), out_dir=OUT, population_size=3,
               max_generations=1, space=space, progress=False, epochs_per_generation=1)
print(json.dumps({"before": before, "after": ng.train.compilation_cache_dir()}))
"""


@pytest.mark.parametrize("opt_out", [False, True], ids=["default", "opted-out"])
def test_fit_switches_the_persistent_cache_on_unless_opted_out(tmp_path, opt_out):
    env = {"NAIVEGA_JAX_XLA_CACHE": "off"} if opt_out else {}
    out = _run(tmp_path, f"OUT = {str(tmp_path / 'run')!r}\n" + FIT, **env)
    assert out["before"] is None
    if opt_out:
        assert out["after"] is None and not (tmp_path / "xla").exists()
    else:
        assert out["after"] == str(tmp_path / "xla")
        assert (tmp_path / "xla").is_dir()
