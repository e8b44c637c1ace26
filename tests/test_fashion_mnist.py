"""``naivega fit --dataset fashion-mnist --subset 5000`` learns: > 70% test accuracy after 2 generations of 4.

Needs the Debian package ``dataset-fashion-mnist`` (CI installs it); slow (minutes on 2 CPU cores).
"""

import json
import time
from pathlib import Path

import pytest

from naivega_jax.cli import main

FILES = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(
    not (FILES / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_subset_learns(tmp_path, capsys):
    out = tmp_path / "run"
    t0 = time.perf_counter()
    args = ["fit", "--dataset", "fashion-mnist", "--subset", "5000", "--population", "4", "--generations", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    seconds = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generation"] == 2 and summary["best"]["test_examples"] == 10000
    assert json.loads((out / "run.json").read_text())["n_train"] == 4500
    with capsys.disabled():
        print(
            f"\nfashion-mnist 5k, 2 generations of 4: test accuracy {summary['best']['test_accuracy']:.4f} "
            f"in {seconds:.0f} s"
        )
    assert summary["best"]["test_accuracy"] > 0.70
