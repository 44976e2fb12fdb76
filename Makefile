# callqa — the two commands: `make run` (dashboard on a demo) and `make test` (the whole suite).
# Both set everything up first and are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := .stamp
HOST ?= 127.0.0.1
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: setup system venv models run demo test test-fast fuzz lint bench clean help

help:
	@echo "make run    - set up, build the demo store and start the dashboard on http://$(HOST):$(PORT)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make bench  - run the benchmarks (bench/README.md)"
	@echo "make fuzz   - the recording fuzz suite with 3,000 mutated recordings (make test runs 320)"

setup: system venv models

system:
	@./scripts/setup-system.sh

venv: $(STAMP)/venv

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	@# the speaker-embedding weights ship in this wheel; its own dependencies (librosa, webrtcvad) are not needed
	$(BIN)/pip install -q --no-deps resemblyzer==0.1.4
	@touch $@

models: venv
	@$(BIN)/python -m core.quality.manager install
	@$(BIN)/python -W ignore -m core.audio.speakers install

demo: setup
	@$(BIN)/callqa demo build

run: setup demo
	FORWARDED_ALLOW_IPS= $(BIN)/streamlit run server.py --server.address $(HOST) --server.port $(PORT) \
	    --server.headless true --browser.gatherUsageStats false

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not e2e and not slow" $(PYTEST_ARGS)

FUZZ_CASES ?= 3000
fuzz: setup
	CALLQA_FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration/test_fuzz_recordings.py $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check core ui pages tests bench app.py server.py

bench: setup
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.api_bench

clean:
	rm -rf $(STAMP) test-artifacts bench/results
