"""What a run killed while writing leaves behind is cleared by the next checkpoint, before LATEST moves to it."""

from __future__ import annotations

import os

import jax
import pytest

import naivega_jax as ng
from naivega_jax.io import _checkpoint

_real_replace = os.replace


class Killed(BaseException):
    """Stands for the process dying at that point."""


def _population(generation):
    inp = ng.input_vertex("in", shape=(2,))
    g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
    return ng.Population([ng.Candidate(g, fitness=0.5)], generation=generation)


def test_leftovers_of_a_killed_write_are_cleared_before_latest_moves(tmp_path, monkeypatch):
    ng.io.write_run_checkpoint(tmp_path, _population(1))
    root = tmp_path / "checkpoints"
    for name in (".gen_000002.tmp-abc123", ".gen_000001.old-def456"):  # as atomic_directory leaves them
        (root / name / "arrays").mkdir(parents=True)
        (root / name / "population.json").write_text("{")
    (root / ".LATEST.123.abc.tmp").write_text("gen_0000")  # as a SIGKILL in the middle of writing LATEST leaves it
    seen = []

    def replace_then_die(src, dst):
        if os.path.basename(dst) != "LATEST":
            return _real_replace(src, dst)
        seen.append(sorted(p.name for p in root.iterdir()))
        raise Killed

    monkeypatch.setattr(_checkpoint.os, "replace", replace_then_die)
    with pytest.raises(Killed):
        ng.io.write_run_checkpoint(tmp_path, _population(2))
    assert len(seen) == 1 and seen[0][1:] == ["LATEST", "gen_000001", "gen_000002"]
    assert seen[0][0].startswith(".LATEST.") and seen[0][0].endswith(".tmp")  # only the LATEST being written
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "gen_000001", "gen_000002"]  # and removed on failure
    monkeypatch.setattr(_checkpoint.os, "replace", _real_replace)
    # LATEST still names generation 1, which loads; the complete generation 2 directory is there for the next write
    pop, _, _, path = ng.io.load_run_checkpoint(tmp_path)
    assert path.name == "gen_000001" and pop.generation == 1
    ng.io.write_run_checkpoint(tmp_path, _population(2))
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "gen_000001", "gen_000002"]
    assert ng.io.load_run_checkpoint(tmp_path)[3].name == "gen_000002"
