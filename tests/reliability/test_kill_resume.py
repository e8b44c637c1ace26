"""``naivega fit`` killed with SIGKILL at random moments, one of them inside a checkpoint write, resumes each time
and ends with exactly the population of an uninterrupted run with the same seed (specs, optimisers, batch sizes,
fitness and lineage equal; params and state bitwise).

The kill inside a checkpoint write is made certain, not hoped for: the test polls ``DIR/checkpoints`` for the
temporary directory that ``atomic_directory`` writes (``.gen_NNNNNN.tmp-*``), freezes the process with SIGSTOP,
waits until every thread is stopped, checks that the temporary directory is still there (so the rename has not
happened), and only then sends SIGKILL. If the write finished before the stop, the process is continued and the
next write is tried.

The other kills: one at a random moment after the start (import, sampling, training, evolving: wherever it
lands), one a random moment after a generation's checkpoint is complete (while the next generation trains), so the
final run resumes from a written checkpoint and evolves it.

Slow (about 2 minutes on 2 idle cores, 5-6 on loaded ones):
``.venv/bin/python -m pytest -q -m slow tests/reliability/test_kill_resume.py``
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import naivega_jax as ng

pytestmark = pytest.mark.slow

GENERATIONS = 3
ARGS = ("--population", "4", "--generations", str(GENERATIONS), "--seed", "1", "--epochs", "1", "--quiet")


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory) -> Path:
    """300 training examples of the 8x8 digits (a subset keeps each generation to seconds)."""
    x, y, xt, yt = ng.datasets.load("digits")
    path = tmp_path_factory.mktemp("data") / "digits300.npz"
    np.savez(path, x_train=x[:300], y_train=y[:300], x_test=xt[:50], y_test=yt[:50])
    return path


def _command(npz: Path, out: Path) -> list[str]:
    if (out / "run.json").is_file():
        return [sys.executable, "-m", "naivega_jax.cli", "resume", str(out)]  # bare: the run's own plan
    return [sys.executable, "-m", "naivega_jax.cli", "fit", "--dataset", str(npz), "--out", str(out), *ARGS]


def _start(npz: Path, out: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(_command(npz, out))}\n".encode())
        return subprocess.Popen(_command(npz, out), stdout=f, stderr=subprocess.STDOUT)


def _all_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is in the stopped state (SIGSTOP is delivered asynchronously)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        states = [Path(f"/proc/{pid}/task/{t}/stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return all(s in "tT" for s in states)


def _temp_checkpoints(out: Path) -> list[str]:
    try:
        return [n for n in os.listdir(out / "checkpoints") if n.startswith(".gen_") and ".tmp-" in n]
    except FileNotFoundError:
        return []


def _kill_during_checkpoint_write(proc: subprocess.Popen, out: Path, timeout: float) -> str | None:
    """SIGKILLs ``proc`` while a checkpoint directory is half written; returns its name, or None if it exited."""
    end = time.monotonic() + timeout
    old = set(_temp_checkpoints(out))  # left by an earlier kill
    while time.monotonic() < end and proc.poll() is None:
        if set(_temp_checkpoints(out)) - old:
            proc.send_signal(signal.SIGSTOP)
            while not _all_stopped(proc.pid) and proc.poll() is None:
                time.sleep(0.0005)
            caught = sorted(set(_temp_checkpoints(out)) - old)
            if caught:
                proc.kill()
                proc.wait()
                return caught[0]
            proc.send_signal(signal.SIGCONT)  # the write completed before the stop: try the next one
        time.sleep(0.001)
    return None


def _latest(out: Path) -> str | None:
    try:
        return (out / "checkpoints" / "LATEST").read_text().strip()
    except FileNotFoundError:
        return None


def _kill_after_next_checkpoint(proc: subprocess.Popen, out: Path, delay: float, timeout: float) -> str | None:
    """SIGKILLs ``proc`` ``delay`` seconds after it completes a checkpoint (in the next generation's training), or
    at once if that was the last generation's (the run is then writing its best model and summary)."""
    start, end = _latest(out), time.monotonic() + timeout
    while _latest(out) == start and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.005)
    completed = _latest(out)
    if proc.poll() is not None or completed == start:
        return None
    if completed == f"gen_{GENERATIONS:06d}":
        delay = 0.0
    return f"{delay:.1f} s after {completed} was complete" if _kill_after(proc, delay) else None


def _kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILLs ``proc`` after ``delay`` seconds; False if it finished first."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def _lineage(c: ng.Candidate) -> str:
    # the lineage must be the same text in every process (ng.evolution.describe_mutation names no memory address)
    return json.dumps(c.lineage, sort_keys=True)


def _assert_same_population(a: ng.Population, b: ng.Population) -> None:
    assert a.generation == b.generation == GENERATIONS
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        assert x.graph.spec == y.graph.spec
        assert (x.optimiser, x.batch_size, x.fitness, x.generation) == (
            y.optimiser,
            y.batch_size,
            y.fitness,
            y.generation,
        )
        assert _lineage(x) == _lineage(y)
        assert x.info.get("failure") == y.info.get("failure")
        for u, v in zip(jax.tree_util.tree_leaves(x.graph), jax.tree_util.tree_leaves(y.graph), strict=True):
            u, v = np.asarray(u), np.asarray(v)
            assert u.dtype == v.dtype and u.shape == v.shape
            assert u.tobytes() == v.tobytes()


@pytest.fixture(scope="module")
def straight(digits_npz, tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run every stopped one must end like, and how long it took."""
    root = tmp_path_factory.mktemp("straight")
    t0 = time.monotonic()
    proc = _start(digits_npz, root / "run", root / "log.txt")
    assert proc.wait(timeout=600) == 0, (root / "log.txt").read_text()
    return root / "run", time.monotonic() - t0


def test_sigkill_at_random_moments_and_inside_a_checkpoint_write_resumes_exactly(digits_npz, straight, tmp_path):
    log = tmp_path / "log.txt"
    straight_dir, duration = straight

    rng = np.random.default_rng(20240611)
    for attempt in range(2):  # a second, fresh run only if a random kill came after the run had finished
        out, kills = tmp_path / f"killed{attempt}", []
        for mode in ("random", "checkpoint", "after-checkpoint"):
            proc = _start(digits_npz, out, log)
            if mode == "checkpoint":
                caught = _kill_during_checkpoint_write(proc, out, timeout=600)
                if caught is not None:
                    kills.append(f"inside the write of {caught}")
            elif mode == "after-checkpoint":
                landed = _kill_after_next_checkpoint(proc, out, float(rng.uniform(0.0, 0.15) * duration), timeout=600)
                if landed is not None:
                    kills.append(landed)
            else:
                delay = float(rng.uniform(0.2, 0.6) * duration)
                if _kill_after(proc, delay):
                    kills.append(f"after {delay:.1f} s")
            if proc.returncode == 0:
                break  # the run completed before this kill
            assert proc.returncode == -signal.SIGKILL, log.read_text()
            # whatever the moment, the run directory holds a usable checkpoint or none yet
            if (out / "checkpoints" / "LATEST").is_file():
                ng.io.load_run_checkpoint(out)
        if len(kills) == 3:
            break
    print("killed:", "; ".join(kills), f"(uninterrupted run: {duration:.1f} s)")
    assert sum(k.startswith("inside") for k in kills) >= 1, kills
    assert sum("was complete" in k for k in kills) >= 1, kills  # a resume from a written checkpoint
    assert len(kills) >= 3, kills

    proc = _start(digits_npz, out, log)
    assert proc.wait(timeout=600) == 0, log.read_text()
    assert _temp_checkpoints(out) == []  # leftovers of the killed writes were cleared
    _assert_same_population(ng.load_population(out), ng.load_population(straight_dir))


def _stop_with(signals: list[signal.Signals], npz: Path, out: Path, after: str) -> tuple[int, float, str, str]:
    """Starts ``naivega fit`` with the default SIGINT disposition (as a terminal's foreground job has it), sends
    ``signals`` once stderr shows ``after``; returns the exit status, the seconds from the first signal to the exit,
    stdout and stderr."""
    command = [sys.executable, "-m", "naivega_jax.cli", "fit", "--dataset", str(npz), "--out", str(out), *ARGS[:-1]]
    # a shim sets SIGINT's default disposition and execs the command (exec keeps it); preexec_fn would fork this
    # multithreaded process and run Python in the child
    shim = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-c", shim, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if after in line:
            break
    assert proc.poll() is None, "".join(seen)
    t0 = time.monotonic()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.3)  # two signals sent at once may arrive as one
        proc.send_signal(sig)
    out_text, err_text = proc.communicate(timeout=120)
    return proc.returncode, time.monotonic() - t0, out_text, "".join(seen) + err_text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_cleanly_and_a_bare_resume_ends_like_the_uninterrupted_run(
    digits_npz, straight, tmp_path, sig
):
    out = tmp_path / "run"
    status, seconds, stdout, stderr = _stop_with([sig], digits_npz, out, after="gen 2 candidate 2/4: fitness")
    # before: SIGINT gave a 48-line KeyboardInterrupt traceback, no summary, and the generation in progress was lost
    assert status == 128 + sig, stderr
    assert seconds < 30, seconds
    assert "Traceback" not in stderr and f"{sig.name}" in stderr and "stopping cleanly" in stderr
    assert f"continue with `naivega resume {out}`" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == sig.name and summary["generation"] == 2
    population, _, extra, _ = ng.io.load_run_checkpoint(out)
    assert population.generation == 2 and extra["complete"] is False
    assert len(extra["evaluated"]) >= 2  # the members scored before the signal are kept
    assert all(population[i].fitness is not None for i in extra["evaluated"])

    log = tmp_path / "resume.txt"
    proc = _start(digits_npz, out, log)  # a bare `naivega resume RUN`
    assert proc.wait(timeout=600) == 0, log.read_text()
    _assert_same_population(ng.load_population(out), ng.load_population(straight[0]))


def test_a_second_ctrl_c_aborts_at_once_leaving_a_usable_checkpoint(digits_npz, tmp_path):
    out = tmp_path / "run"
    status, seconds, _, stderr = _stop_with(
        [signal.SIGINT, signal.SIGINT], digits_npz, out, after="gen 2 candidate 1/4: fitness"
    )
    # 130 from the handler; or, when the second signal lands while the interpreter shuts down (Python has put the
    # default disposition back by then), the signal itself ends the process: either way at once, without a traceback
    assert status in (128 + signal.SIGINT, -signal.SIGINT) and seconds < 10, stderr
    assert "Traceback" not in stderr
    assert "aborting at once" in stderr or status == -signal.SIGINT
    assert ng.io.load_run_checkpoint(out)[0].generation >= 1
