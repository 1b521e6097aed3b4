# Two commands for a newcomer:  `make demo`  (the main job)  and  `make test`  (all tests).
# Both create and fill the virtual environment .venv themselves (idempotent: a stamp
# file records the requirements it was built from, so a second call installs nothing).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PRESET ?= small
PAPERMILL := $(VENV)/bin/papermill --log-output --no-progress-bar -k python3
RUNS := papermill_runs
PYTEST_ARGS ?=

.PHONY: venv browser dlib-blas demo reproduce test test-fast test-faults figures benchmark clean-runs help
help:
	@echo "make demo    - run the pipeline notebooks with papermill at PRESET=$(PRESET) into $(RUNS)/, figures into figures/"
	@echo "make reproduce - every grid x seeds 0,1,2 with the fast recipe (resumable; about 18 hours at small on 2 cores)"
	@echo "make test    - unit tests + nbval notebook regression (tiny preset) + the JupyterLab browser test"
	@echo "make test-faults - a real tiny sweep killed at random points (SIGKILL, SIGTERM) loses nothing"
	@echo "make browser - install Debian's chromium + chromium-driver for the browser test (as root; make test runs it)"
	@echo "make figures - redraw every figure from existing runs"
	@echo "make benchmark - time training iterations (CPU, and CUDA when present)"
	@echo "make dlib-blas - replace the dlib-bin wheel by dlib compiled with OpenBLAS (5x faster descriptors; as root, about 20 min)"

venv: $(STAMP)
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the local CPU wheel; anything looser pulls a multi-GB CUDA build.
	$(PIP) install -q --disable-pip-version-check torch==2.13.0
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(PY) -c "import torch, lib; assert torch.__version__.startswith('2.13'), torch.__version__"
	touch $(STAMP)

demo: venv
	$(PY) -m lib.runs.demo --preset $(PRESET)

reproduce: venv
	$(PY) -m lib.runs.demo --plan reproduce --preset $(PRESET)

# The browser test (tests/test_browser.py) drives Debian's Chromium through its chromedriver; nothing is
# downloaded at test time.  Installing them needs root (or password-less sudo); without, that test is skipped.
APT_INSTALL := env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	as_root=""; if [ "$$(id -u)" != 0 ]; then as_root="sudo -n"; fi; \
	echo "installing chromium and chromium-driver (Debian) for the browser test ..."; \
	$$as_root $(APT_INSTALL) >/dev/null 2>&1 || { $$as_root apt-get update -q >/dev/null 2>&1 && \
	  $$as_root $(APT_INSTALL) >/dev/null 2>&1; } || \
	echo "make browser: could not install chromium/chromium-driver (needs root and apt); tests/test_browser.py will be skipped"

# dlib-bin (in requirements.txt) is built without BLAS: its face descriptor runs in dlib's own loops. This
# compiles dlib 20.0.1 from source against Debian's OpenBLAS/LAPACK instead (pip keeps the built wheel, so a
# second venv installs it in seconds). Optional: every instrument works with either build.
DLIB_BUILD_DEPS := libopenblas-dev liblapack-dev cmake g++
dlib-blas: venv
	@as_root=""; if [ "$$(id -u)" != 0 ]; then as_root="sudo -n"; fi; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DLIB_BUILD_DEPS) \
	  >/dev/null || { echo "make dlib-blas: could not install $(DLIB_BUILD_DEPS) (needs root and apt)"; exit 1; }
	$(PIP) uninstall -y -q dlib-bin
	$(PIP) install --disable-pip-version-check --no-binary dlib dlib==20.0.1
	$(PY) -c "import dlib; assert dlib.DLIB_USE_BLAS, 'dlib was built without BLAS: is libopenblas-dev installed?'; print('dlib', dlib.__version__, 'with BLAS')"

test: venv browser
	$(PY) -m pytest -m "not faults" $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow and not faults" $(PYTEST_ARGS)

test-faults: venv
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

figures: venv
	$(PY) -m lib.runs.demo --preset $(PRESET) --figures-only

benchmark: venv
	$(PY) -m lib.train.benchmark

clean-runs:
	rm -rf $(RUNS)/* figures/*.png
