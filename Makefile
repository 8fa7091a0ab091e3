# Virtual environments made and filled by these targets, so a fresh clone
# needs nothing but python3 and make. constraints.txt pins torch to the CPU
# build (newer optimum-intel releases would otherwise pull a CUDA torch).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_C := --quiet --constraint constraints.txt
# torch goes in with pip, which finds the machine's CPU wheel (pip's
# find-links; uv does not look there); uv then resolves and installs the rest
# in seconds where pip took minutes (measured: a whole .venv in 43 s).
UV_C := --quiet --constraint constraints.txt
# The [onnx] extra pins an older transformers, so the accelerated backends
# (onnx, openvino) get their own venv.
VENV_ACCEL ?= .venv-accel
RERANKER ?= .cache/standin-cross-encoder
export HF_HUB_OFFLINE ?= 1

.PHONY: install test test-core test-serve test-ray test-accel lint example bench

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet uv
	$(PY) -m pip install $(PIP_C) torch
	$(VENV)/bin/uv pip install --python $(PY) $(UV_C) -e ".[test,ray]"
	touch $@

$(VENV_ACCEL)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV_ACCEL)
	$(VENV_ACCEL)/bin/python -m pip install --quiet uv
	$(VENV_ACCEL)/bin/python -m pip install $(PIP_C) torch
	$(VENV_ACCEL)/bin/uv pip install --python $(VENV_ACCEL)/bin/python $(UV_C) \
		-e ".[test,onnx,openvino,bench]"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint test-core test-serve test-ray test-accel

# The slow suites run as steps of their own: a served model in real processes,
# and a local Ray instance with Serve replicas and Data workers.
test-core: install
	$(PY) -m pytest -m "not onnx and not openvino and not anchors and not serve and not ray"

test-serve: install
	$(PY) -m pytest -m serve

test-ray: install
	$(PY) -m pytest -m ray

test-accel: $(VENV_ACCEL)/.installed
	$(VENV_ACCEL)/bin/python -m pytest -m "onnx or openvino" \
		--ignore=tests/integration_tests/test_ray.py \
		--ignore=tests/unit_tests/test_http_contract.py \
		--ignore=tests/unit_tests/test_family_instructions.py \
		--ignore=tests/unit_tests/test_serve_instructions.py  # Ray is not in this venv

# Without Hub access, the example uses the untrained stand-in cross-encoder
# (same architecture, meaningless scores); with it, run
#   make example RERANKER=cross-encoder/ms-marco-MiniLM-L6-v2 HF_HUB_OFFLINE=0
example: install
	@if [ "$(RERANKER)" = ".cache/standin-cross-encoder" ]; then \
		echo "Using the untrained stand-in cross-encoder: reranked scores are meaningless." >&2; \
		$(PY) examples/build_standin_reranker.py $(RERANKER) >/dev/null; fi
	$(PY) examples/rerank_results.py --reranker $(RERANKER)

# Benchmarks run in the accelerated venv so every backend is timed in one run.
BENCH_PY := ../$(VENV_ACCEL)/bin/python
bench: $(VENV_ACCEL)/.installed
	cd benchmarks && $(BENCH_PY) rerank.py
	cd benchmarks && $(BENCH_PY) retrieval.py --sizes 100000
	cd benchmarks && $(BENCH_PY) retrieval.py --sizes 1000000 --types Flat IVF1024,SQ8 IVF1024,PQ48
	cd benchmarks && $(BENCH_PY) bm25.py
	cd benchmarks && $(BENCH_PY) indexing.py
	cd benchmarks && $(BENCH_PY) make_manpage_set.py
	cd benchmarks && $(BENCH_PY) make_docstring_set.py
	cd benchmarks && $(BENCH_PY) first_stage_quality.py --grid
