# One virtual environment, made and filled by these targets, so a fresh clone
# needs nothing but python3 and make. torch is pinned to the CPU build.
VENV ?= .venv
PY := $(VENV)/bin/python
# The [onnx] extra pins an older transformers, so its tests get their own venv.
VENV_ONNX ?= .venv-onnx
RERANKER ?= .cache/standin-cross-encoder
export HF_HUB_OFFLINE ?= 1

.PHONY: install test test-core test-onnx lint example bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(VENV_ONNX)/.installed: pyproject.toml
	python3 -m venv $(VENV_ONNX)
	$(VENV_ONNX)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_ONNX)/bin/python -m pip install --quiet "torch==2.13.0"
	$(VENV_ONNX)/bin/python -m pip install --quiet -e ".[test,onnx]"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint test-core test-onnx

test-core: install
	$(PY) -m pytest -m "not onnx"

test-onnx: $(VENV_ONNX)/.installed
	$(VENV_ONNX)/bin/python -m pytest -m onnx

# Without Hub access, the example uses the untrained stand-in cross-encoder
# (same architecture, meaningless scores); with it, run
#   make example RERANKER=cross-encoder/ms-marco-MiniLM-L6-v2 HF_HUB_OFFLINE=0
example: install
	@if [ "$(RERANKER)" = ".cache/standin-cross-encoder" ]; then \
		echo "Using the untrained stand-in cross-encoder: reranked scores are meaningless." >&2; \
		$(PY) examples/build_standin_reranker.py $(RERANKER) >/dev/null; fi
	$(PY) examples/rerank_results.py --reranker $(RERANKER)

# Benchmarks run in the [onnx] venv so every backend is timed in one run.
bench: $(VENV_ONNX)/.installed
	$(VENV_ONNX)/bin/python -m pip install --quiet -e ".[test,onnx,bench]"
	cd benchmarks && ../$(VENV_ONNX)/bin/python rerank.py
	cd benchmarks && ../$(VENV_ONNX)/bin/python retrieval.py --sizes 100000
	cd benchmarks && ../$(VENV_ONNX)/bin/python retrieval.py --sizes 1000000 --types Flat IVF1024,SQ8 IVF1024,PQ48
	cd benchmarks && ../$(VENV_ONNX)/bin/python indexing.py
