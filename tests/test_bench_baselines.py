"""The arithmetic of benchmarks/bench_baselines.py's report, on fake results (no training)."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_baselines.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(out: Path, config: str, seed: int, acc: float, wall: float, examples: int, nparams: int, **extra) -> None:
    record = {
        "experiment": "mnist1d",
        "setting": "F1",
        "config": config,
        "seed": seed,
        "test_accuracy": acc,
        "nparams": nparams,
        "wall_seconds": wall,
        "compile_seconds": wall / 4,
        "train_examples": examples,
        "candidate_epochs": examples // 3600,
        **extra,
    }
    (out / f"mnist1d-F1-{config}-seed{seed}.json").write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path):
    # two seeds of the search and of random search with K=8 and K=16
    _write(tmp_path, "search", 0, 0.90, 100.0, 864000, 1000)
    _write(tmp_path, "search", 1, 0.80, 120.0, 864000, 3000)
    _write(tmp_path, "random8", 0, 0.85, 50.0, 864000, 500, members=8, epochs_per_member=30)
    _write(tmp_path, "random8", 1, 0.83, 60.0, 864000, 700, members=8, epochs_per_member=30)
    _write(tmp_path, "random16", 0, 0.70, 40.0, 864000, 400, members=16, epochs_per_member=15)
    _write(tmp_path, "random16", 1, 0.74, 80.0, 864000, 600, members=16, epochs_per_member=15)
    return tmp_path


def test_report_means_sds_and_strongest_k(bench, results):
    text = bench.report(results, png=None)
    group = bench.summarise(bench.load_records(results))[("mnist1d", "F1")]
    rows = group["rows"]

    mean, sd = rows["search"]["test_accuracy"]
    assert mean == pytest.approx(0.85)
    assert sd == pytest.approx(math.sqrt(2 * 0.05**2))  # sample sd of 0.90 and 0.80: 0.0707
    assert rows["random8"]["test_accuracy"][0] == pytest.approx(0.84)
    assert rows["random8"]["test_accuracy"][1] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert rows["random16"]["test_accuracy"][0] == pytest.approx(0.72)
    assert rows["search"]["nparams"] == (2000.0, pytest.approx(math.sqrt(2) * 1000))
    assert rows["search"]["nparams_range"] == (1000, 3000)
    assert group["strongest_random"] == "random8"

    # random K=8 matched or beat the search on seed 1 only (0.83 >= 0.80; 0.85 < 0.90)
    assert rows["random8"]["paired_seeds"] == [0, 1]
    assert rows["random8"]["matched_or_beat"] == [1]
    assert rows["random16"]["matched_or_beat"] == []
    # paired differences, search - K=8: 0.05 and -0.03
    assert rows["random8"]["accuracy_search_minus_this"] == (pytest.approx(0.01), pytest.approx(math.sqrt(2) * 0.04))
    # search wall / random wall per seed: 100/50 = 2 and 120/60 = 2; 100/40 = 2.5 and 120/80 = 1.5
    assert rows["random8"]["wall_ratio_search_over_this"] == (pytest.approx(2.0), pytest.approx(0.0))
    assert rows["random16"]["wall_ratio_search_over_this"][0] == pytest.approx(2.0)

    assert "| search | 2 | 85.00 +- 7.07 | 2,000 +- 1,414 (1,000-3,000) |" in text
    assert "| random K=8 (30 ep.) | 2 | 84.00 +- 1.41 |" in text
    assert "| 1 of 2 | 1.00 +- 5.66 | 2.00 +- 0.00 |" in text
    assert (
        "Strongest random search: random K=8 (84.00 +- 1.41 % test accuracy); it matched or beat the search on 1 of 2"
        in text
    )
    per_seed = ["| seed | search | random K=8 | random K=16 |", "|---|---|---|---|", "| 0 | 90.0 | 85.0 | 70.0 |"]
    assert "\n".join([*per_seed, "| 1 | 80.0 | 83.0 | 74.0 |"]) in text
    assert (results / "report.md").read_text() == text


def test_mean_sd_of_one_value_has_no_sd(bench):
    assert bench.mean_sd([0.5]) == (0.5, None)
    assert bench.mean_sd([]) == (None, None)
    assert bench.mean_sd([1.0, None, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))


def test_only_missing_runs_are_started(bench, results, tmp_path_factory, monkeypatch):
    # seeds 0 and 1 have the search and K=8 and 16; only K=24 of each (at the search's examples) is missing
    started = []

    def fake_run_fit(run_dir, options):
        started.append(list(options))
        return {"test_accuracy": 0.5, "wall_seconds": 1.0, "train_examples": 864000, "n_train": 3600}

    monkeypatch.setattr(bench, "run_fit", fake_run_fit)
    bench.search_vs_random(
        results,
        tmp_path_factory.mktemp("work"),
        experiment="mnist1d",
        setting="F1",
        data_options=["--dataset", "mnist1d"],
        generations=6,
        seeds=[0, 1],
    )
    assert [o[o.index("--seed") + 1] for o in started] == ["0", "1"]
    assert all(o[o.index("--population") + 1] == "24" and o[o.index("--budget") + 1] == "864000" for o in started)
    record = json.loads((results / "mnist1d-F1-random24-seed1.json").read_text())
    assert record["epochs_per_member"] == 10  # 864000 / (24 x 3600)
    assert record["machine"]["nproc"] >= 1


def test_cnn_epoch_rule(bench):
    assert bench.should_start_epoch(0.5, None, 60.0)
    assert bench.should_start_epoch(50.0, 10.0, 60.0)  # ends at 60 s
    assert bench.should_start_epoch(50.5, 10.0, 60.0)  # ends 0.5 s (5% of an epoch) late
    assert not bench.should_start_epoch(51.5, 10.0, 60.0)  # ends 1.5 s (15% of an epoch) late


def test_anneal_runs_both_strategies_annealed_under_their_own_setting(bench, tmp_path, monkeypatch):
    started = []

    def fake_run_fit(run_dir, options):
        started.append(list(options))
        return {"test_accuracy": 0.5, "wall_seconds": 1.0, "train_examples": 864000, "n_train": 3600}

    monkeypatch.setattr(bench, "run_fit", fake_run_fit)
    argv = ["mnist1d", "--anneal", "--seeds", "0", "--members", "8", "--out", str(tmp_path), "--work", str(tmp_path)]
    assert bench.main(argv) == 0
    assert len(started) == 2 and all("--anneal" in o for o in started)
    assert "--strategy" not in started[0] and started[1][started[1].index("--strategy") + 1] == "random"
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "mnist1d-F1-anneal-random8-seed0.json",
        "mnist1d-F1-anneal-search-seed0.json",
    ]
    started.clear()
    assert bench.main(argv[:1] + argv[2:-4] + ["--out", str(tmp_path / "plain"), "--work", str(tmp_path)]) == 0
    assert len(started) == 2 and not any("--anneal" in o for o in started)
