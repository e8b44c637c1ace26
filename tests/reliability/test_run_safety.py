"""The command line and ``fit`` as a careless user and a cluster scheduler meet them: a resume continues the run's
own plan, a run directory never continues on other data, one process per run directory, and every user error is one
line ``naivega: error: ...`` with exit status 2 before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import naivega_jax as ng
from naivega_jax.cli import main

SMALL = ("--population", "3", "--epochs", "1", "--quiet")


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, Path]:
    """Two npz files of 8x8 digits with the same shapes and labels; one pixel of one image differs."""
    x, y, xt, yt = ng.datasets.load("digits")
    root = tmp_path_factory.mktemp("data")
    a, b = root / "a.npz", root / "b.npz"
    np.savez(a, x_train=x[:150], y_train=y[:150], x_test=xt[:40], y_test=yt[:40])
    other = x[:150].copy()
    other[7, 3, 3] += 1.0
    np.savez(b, x_train=other, y_train=y[:150], x_test=xt[:40], y_test=yt[:40])
    return a, b


def _error_line(capsys) -> str:
    """The one error line on stderr (after at most the line naming the data being loaded), no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    assert 1 <= len(err) <= 2 and "Traceback" not in "".join(err), err
    assert err[-1].startswith("naivega: error: ") and all(not e.startswith("naivega: error") for e in err[:-1]), err
    return err[-1]


def test_a_bare_resume_continues_the_runs_own_plan_and_flags_override_and_are_recorded(digits, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--dataset", str(digits[0]), "--out", str(out), "--generations", "2", *SMALL]) == 0
    assert ng.load_population(out).generation == 2
    # before: a bare resume ran on to the command's default of 6 generations
    assert main(["resume", str(out), "--quiet"]) == 0
    assert ng.load_population(out).generation == 2
    assert "reached max_generations=2; nothing to do" in (out / "run.log").read_text()

    assert main(["resume", str(out), "--generations", "3", "--quiet"]) == 0
    assert ng.load_population(out).generation == 3
    info = json.loads((out / "run.json").read_text())
    assert info["cli"]["generations"] == 3 and info["cli"]["epochs"] == 1 and info["cli"]["executor"] == "local"
    assert [s["plan"]["max_generations"] for s in info["sessions"]] == [2, 2, 3]
    assert info["command"][:3] == ["naivega", "resume", str(out)] or info["command"][0] == "naivega"
    assert main(["resume", str(out), "--quiet"]) == 0  # the override is now the plan
    assert ng.load_population(out).generation == 3


def test_a_run_directory_refuses_other_data_of_the_same_shape_naming_both_files(digits, tmp_path, capsys):
    a, b = digits
    out = tmp_path / "run"
    assert main(["fit", "--dataset", str(a), "--out", str(out), "--generations", "1", *SMALL]) == 0
    before = ng.load_population(out)
    capsys.readouterr()
    # before: the old population trained on the new data
    assert main(["fit", "--dataset", str(b), "--out", str(out), "--generations", "2", *SMALL]) == 2
    line = _error_line(capsys)
    assert "other training data" in line and str(a) in line and str(b) in line
    after = ng.load_population(out)
    assert after.generation == before.generation == 1
    assert json.loads((out / "run.json").read_text())["cli"]["dataset"] == str(a)


def test_fit_refuses_other_data_from_python_too(tmp_path):
    x, y, _, _ = ng.datasets.load("digits")
    kw = dict(key=jax.random.key(0), out_dir=tmp_path, population_size=3, max_generations=1, progress=False)
    ng.autofit.fit(x[:150], y[:150], epochs_per_generation=1, **kw)
    relabelled = y[:150].copy()
    relabelled[:5] = relabelled[5:10]  # same classes, other labels on 5 examples
    with pytest.raises(ng.autofit.RunDirectoryError, match="other training data"):
        ng.autofit.fit(x[:150], relabelled, epochs_per_generation=1, **kw)


def test_a_second_process_on_a_run_directory_exits_at_once_naming_the_holder(digits, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--dataset", str(digits[0]), "--out", str(out), "--generations", "1", *SMALL]) == 0
    capsys.readouterr()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from naivega_jax.autofit._control import RunLock; RunLock({str(out)!r}).acquire();"
            "print('locked', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        t0 = time.monotonic()
        # before: two resumes trained the same generations and interleaved run.log
        assert main(["resume", str(out), "--generations", "2", "--quiet"]) == 2
        assert time.monotonic() - t0 < 30
        line = _error_line(capsys)
        assert f"process {holder.pid} on" in line and "in use" in line
        assert ng.load_population(out).generation == 1
    finally:
        holder.kill()
        holder.wait()
    # the killed holder's lock went with it: the run resumes
    assert main(["resume", str(out), "--generations", "2", "--quiet"]) == 0
    assert ng.load_population(out).generation == 2


def test_the_lock_is_exclusive_within_one_process_and_released_on_exit(tmp_path):
    from naivega_jax.autofit._control import RunLock

    with RunLock(tmp_path), pytest.raises(ng.autofit.RunDirectoryError, match=f"process {os.getpid()}"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        pass


def test_every_user_error_is_one_line_with_exit_status_2_before_any_work(digits, tmp_path, capsys, monkeypatch):
    a, _ = digits
    not_npz = tmp_path / "bad.npz"
    not_npz.write_text("not an npz")
    keys_missing = tmp_path / "keys.npz"
    np.savez(keys_missing, x_train=np.zeros((4, 3)))
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    tiny = tmp_path / "tiny.npz"
    x = np.random.default_rng(0).normal(size=(60, 2, 2, 1)).astype(np.float32)
    np.savez(tiny, x_train=x, y_train=np.arange(60) % 2, x_test=x[:10], y_test=np.arange(10) % 2)
    cases = [
        (["fit", "--dataset", str(not_npz)], "bad.npz"),
        (["fit", "--dataset", str(keys_missing)], "y_train"),
        (["fit", "--dataset", "imagenet"], "unknown data set 'imagenet'"),
        (["fit", "--dataset", str(a), "--out", str(a_file)], "is a file"),
        (["fit", "--dataset", str(a), "--out", str(a_file / "sub")], "is a file"),
        (["fit", "--population", "2"], "--population: expected an integer >= 3, got '2'"),
        (["fit", "--seed", str(2**64)], "--seed: expected an integer from 0 to 4294967295"),
        (["fit", "--seed", "-1"], "--seed: expected an integer from 0 to 4294967295"),
        (["fit", "--dataset", str(tiny), *SMALL], "(2, 2, 1)"),
        (["export", str(tmp_path), "--out", str(tmp_path / "x")], "not a population checkpoint"),
    ]
    for argv, message in cases:
        out = tmp_path / "runs"
        argv = [*argv, "--out", str(out)] if argv[0] == "fit" and "--out" not in argv else argv
        try:
            status = main(argv)
        except SystemExit as e:  # argparse exits
            status = e.code
        assert status == 2, argv
        line = _error_line(capsys)
        assert message in line, (argv, line)
        assert not out.exists(), argv  # refused before the run directory was made
    assert a_file.read_text() == "mine"

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    out = tmp_path / "ray-run"
    assert main(["fit", "--dataset", str(a), "--out", str(out), "--executor", "ray", *SMALL]) == 2
    assert "needs Ray, which is not installed" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_is_refused(digits, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["fit", "--dataset", str(digits[0]), "--out", str(locked / "run"), *SMALL]) == 2
    assert "not writable" in _error_line(capsys)


def test_a_user_error_from_the_installed_command_has_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NAIVEGA_DEBUG"}
    cmd = [sys.executable, "-m", "naivega_jax.cli", "fit", "--dataset", str(tmp_path / "missing.npz")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "Traceback" not in done.stderr
    assert done.stderr.startswith("naivega: error: ") and "missing.npz" in done.stderr
    debug = subprocess.run(cmd, capture_output=True, text=True, env={**env, "NAIVEGA_DEBUG": "1"}, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_evaluate_refuses_labels_the_run_never_saw(digits, tmp_path, capsys):
    a, _ = digits
    out = tmp_path / "run"
    assert main(["fit", "--dataset", str(a), "--out", str(out), "--generations", "1", *SMALL]) == 0
    with np.load(a) as f:
        arrays = dict(f)
    arrays["y_test"] = arrays["y_test"] + 5  # labels 10..14 were never seen; 5..9 are coded as other classes
    shifted = tmp_path / "shifted.npz"
    np.savez(shifted, **arrays)
    capsys.readouterr()
    # before: searchsorted coded the unknown labels as class 9 or 10 and printed a wrong accuracy
    assert main(["evaluate", str(out), "--dataset", str(shifted)]) == 2
    line = _error_line(capsys)
    assert "[10, 11, 12, 13, 14]" in line and "the training data does not have" in line
    assert main(["evaluate", str(out), "--dataset", str(a), "--top", "1"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_final_training_is_a_checked_and_resumable_part_of_the_plan(digits, tmp_path, capsys):
    a, _ = digits
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exited:  # the argument parser's error, one line too
        main(["fit", "--dataset", str(a), "--out", str(out), "--generations", "1", "--final-training", "1"])
    assert exited.value.code == 2
    assert "--final-training: expected 0 (none) or a share between 0 and 1" in _error_line(capsys)
    argv = ["fit", "--dataset", str(a), "--out", str(out), "--strategy", "random", "--final-training", "0.5"]
    assert main(argv) == 2
    assert "--final-training is for --strategy evolution" in _error_line(capsys)
    argv = ["fit", "--dataset", str(a), "--out", str(out), "--generations", "1", "--final-training", "0.5", *SMALL]
    assert main(argv) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["cli"]["final_training"] == 0.5
    summary = json.loads((out / "summary.json").read_text())
    # the screen: 9 members x 1 pass over a third of the data; then the best trains as many examples again
    n = info["n_train"]
    assert summary["totals"]["train_examples"] == 9 * round(n / 3) + 3 * n
    # in passes over the training split: the screen's 9 passes over a third of it count 3 epochs
    assert summary["totals"]["candidate_epochs"] == pytest.approx(9 * round(n / 3) / n + 3)


def test_a_file_system_without_locks_is_run_on_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    from naivega_jax.autofit._control import RunLock

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING", logger="naivega_jax"), RunLock(tmp_path):
        pass
    assert "nothing stops a second process" in caplog.text and "No locks available" in caplog.text
