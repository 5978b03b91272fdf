# Set-up and everyday commands. Every target installs what it needs into .venv first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: score test test-fast test-long mutation docs bench clean-venv

$(STAMP): pyproject.toml
	test -d /usr/share/datasets/fashion-mnist || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get install -y -qq dataset-fashion-mnist) || echo "note: apt-get install dataset-fashion-mnist for stage-1 training and the sanity tests"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e ".[dev,docs]"
	touch $(STAMP)

## Main job: score the committed example reconstructions against their originals with the bundled default model (offline).
score: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/semsim score examples/originals examples/reconstructions --probability
	@echo "The judges' verdict on each pair (recognised or not, and why) is in examples/README.md."

## Lint and format check, the test suite (slow tests included) and the strict docs build; `make test-long` and
## `make mutation` are the long runs. The suite runs on one pytest-xdist worker per core (each with one thread, a
## test file's tests on one worker); `make test TEST_WORKERS=0` runs it in this process instead.
TEST_WORKERS ?= $(shell env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 1)
test: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not long" -n $(TEST_WORKERS) --dist loadfile --durations=15
	$(BIN)/mkdocs build --strict --site-dir /tmp/semsim-site

## Quick loop: skip tests marked slow.
test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow and not long"

## Long runs: the input gate's property test with 10,000+ examples.
test-long: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m long -p no:cacheprovider

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_metric.py

clean-venv:
	rm -rf $(VENV)

## Mutation testing of the input gate, functional core, metric, loss, model I/O, splits, statistics, the annotation
## app and the converters (long).
## mutmut must import the mutated copy, so it runs from a venv that sees this venv's packages but not the
## editable install of the package itself.
## MUTANTS='*__mutmut_*5' runs a systematic 10% sample (mutants numbered 5, 15, 25, ... of each function).
MUTVENV := /tmp/semsim-mutmut-venv
MUTANTS ?=
mutation: $(STAMP)
	rm -rf mutants $(MUTVENV)
	python3 -m venv $(MUTVENV)
	$(MUTVENV)/bin/python -m pip install -q mutmut==3.8.1
	$(BIN)/python -c "import site; print(site.getsitepackages()[0])" > "$$($(MUTVENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/semsim-deps.pth"
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 SEMSIM_SHARED_DATA=$(CURDIR)/../shared/data $(MUTVENV)/bin/python -m mutmut run --max-children 2 $(MUTANTS)
	$(MUTVENV)/bin/python scripts/mutation_summary.py --only '$(or $(MUTANTS),*)'
