# Set-up and the two jobs the README promises. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all lint bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

# The main job: `naivega fit` = a search on MNIST-1D (offline generator), 6 generations of 8 candidates, 5 epochs
# each per generation: ~1.2 minutes on 2 idle CPU cores (README). The time budget guarantees it ends, cleanly, in 10 minutes.
demo: $(STAMP)
	$(VENV)/bin/naivega fit --time-budget 9m

test: $(STAMP)
	$(VENV)/bin/ruff check naivega_jax tests benchmarks examples
	$(VENV)/bin/ruff format --check naivega_jax tests benchmarks examples
	$(VENV)/bin/mypy naivega_jax
	$(PY) -m pytest -q -n 2 -m "not slow" --doctest-modules naivega_jax tests

# The long end-to-end checks CI runs after `make test`: kill -9 and resume of `naivega fit` (bitwise the same
# population as an uninterrupted run), a Fashion-MNIST search (needs the Debian package dataset-fashion-mnist), and
# every benchmark's --quick mode.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests/reliability/test_kill_resume.py tests/test_fashion_mnist.py tests/test_benchmarks_quick.py

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --doctest-modules naivega_jax tests

# The documentation (docs/: architecture, API reference from the docstrings, the quickstart notebook as stored) as
# HTML in docs/_build/html; any Sphinx warning fails the build.
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

lint: $(STAMP)
	$(VENV)/bin/ruff format naivega_jax tests benchmarks examples
	$(VENV)/bin/ruff check --fix naivega_jax tests benchmarks examples

# The regression benchmarks (benchmarks/RESULTS.md has what each guards). `make bench` measures in full: hours on 2
# CPU cores (bench_memory ~20 min, bench_baselines ~1 hour, resuming: it runs only the runs whose JSON is missing);
# each writes <name>.json and <name>.md under benchmarks/results/. `make bench-quick` smoke-runs each with --quick
# (the same code path on little data, numbers meaningless) into benchmarks/results/quick/.
.PHONY: bench-quick
BENCHMARKS := bench_train bench_flax bench_compile bench_solver bench_search bench_distributed bench_memory

bench: $(STAMP)
	set -e; for b in $(BENCHMARKS); do $(PY) benchmarks/$$b.py; done
	$(PY) benchmarks/bench_baselines.py mnist1d --budget-factor 1 --seeds 0 1 2 3 4
	$(PY) benchmarks/bench_baselines.py report

bench-quick: $(STAMP)
	set -e; for b in $(BENCHMARKS); do $(PY) benchmarks/$$b.py --quick; done
	$(PY) benchmarks/bench_baselines.py mnist1d --quick

clean:
	rm -rf $(VENV) build dist *.egg-info
