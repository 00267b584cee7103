# VAEs from Scratch. Two commands on a fresh machine: `make book` and `make test`.
# Everything installs into .venv; the targets call .venv/bin/... so nothing needs activating.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
NPM      ?= npm
CHROMIUM ?= /usr/bin/chromium

# VAEBOOK_FAST=1 (e.g. make test-browser VAEBOOK_FAST=1) builds the book with short training
# runs into _build/fast/ instead, with an execution cache of its own: the cache is keyed by the
# notebooks' content, not by VAEBOOK_FAST, so fast and full outputs must never share one.
ifneq ($(filter 1 true yes,$(shell echo '$(VAEBOOK_FAST)' | tr A-Z a-z)),)
BUILD_DIR  := _build/fast/_build
BOOK_FLAGS := --path-output _build/fast
BOOK_ENV   := VAEBOOK_FAST=1
else
BUILD_DIR  := _build
BOOK_FLAGS :=
BOOK_ENV   :=
endif
HTML_DIR := $(BUILD_DIR)/html
HASH     := $(BUILD_DIR)/.vaebook-src-hash

# BLAS threads for the notebooks the book executes. The chapters' matrices are small: one thread
# is as fast on an idle machine, and several threads waiting on each other are up to ten times
# slower when anything else runs on the machine. `make book BLAS_THREADS=4` overrides it.
BLAS_THREADS ?= 1

.DEFAULT_GOAL := help
.PHONY: help book test test-browser lab bench clean distclean

help:
	@echo "make book       build the HTML book into _build/html (installs .venv first)"
	@echo "make test       run the tests and every notebook (VAEBOOK_FAST=1)"
	@echo "make test-browser  build the book and check every page in Chromium"
	@echo "                (VAEBOOK_FAST=1: short training runs, built into _build/fast)"
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make bench      time one training step (benchmarks/train_step.py)"
	@echo "make clean      remove _build and caches (keeps .venv)"
	@echo "make distclean  clean, and remove .venv and the fetched JavaScript"

# Create .venv with Python >= 3.11 and install the pinned requirements (the last line of
# requirements.txt installs vaebook itself in editable mode).
$(STAMP): requirements.txt pyproject.toml
	@py=$(PYTHON); [ -x $(BIN)/python ] && py=$(BIN)/python; \
	if ! command -v $$py >/dev/null 2>&1; then \
		echo "error: $$py not found; install Python 3.11 or newer (or run make PYTHON=/path/to/python3.11)" >&2; \
		exit 1; \
	fi; \
	if ! $$py -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
		echo "error: $$py is Python $$($$py -c 'import platform; print(platform.python_version())'); this book needs 3.11 or newer." >&2; \
		echo "       Install a newer Python and run: make PYTHON=/path/to/python3.11 (after rm -rf $(VENV) if it exists)" >&2; \
		exit 1; \
	fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	@touch $@

pyproject.toml:
	@echo "error: pyproject.toml is missing; it defines the vaebook package that requirements.txt installs." >&2
	@exit 1

book: $(STAMP)
	@if command -v $(NPM) >/dev/null 2>&1; then \
		NPM=$(NPM) bash book/_scripts/fetch_static.sh || \
		echo "notice: could not fetch MathJax and the widget JavaScript; the book will load them from CDNs"; \
	else \
		echo "notice: npm not found; math and widgets in the book will load from CDNs (install Node.js to vendor them)"; \
	fi
	@# execute_notebooks: cache does not see changes in src/vaebook, and Sphinx rereads only the
	@# pages whose source changed: when src/vaebook changes, drop both, so every chapter reruns.
	@mkdir -p $(BUILD_DIR)
	@new=$$(LC_ALL=C sha256sum src/vaebook/*.py 2>/dev/null | sha256sum | cut -d' ' -f1); \
	if [ "$$new" != "$$(cat $(HASH) 2>/dev/null)" ] && [ -d $(BUILD_DIR)/.doctrees ]; then \
		echo "src/vaebook changed since the last build: every chapter will be executed again"; \
		rm -rf $(BUILD_DIR)/.jupyter_cache $(BUILD_DIR)/.doctrees; \
	fi; \
	echo "$$new" > $(HASH).new
	$(BOOK_ENV) OPENBLAS_NUM_THREADS=$(BLAS_THREADS) OMP_NUM_THREADS=$(BLAS_THREADS) \
		$(BIN)/jupyter-book build . $(BOOK_FLAGS) -W --keep-going
	@mv $(HASH).new $(HASH)
	@echo
	@echo "Open the book at: file://$(CURDIR)/$(HTML_DIR)/book/intro.html"

# Two pytest workers share the two cores, so each gets one BLAS thread (no oversubscription).
test: $(STAMP)
	@VAEBOOK_FAST=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
		$(BIN)/python -m pytest -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

# Browser checks of the built book (browser_tests/): Playwright drives the system Chromium
# through every page the table of contents lists; screenshots land in _build/screenshots/.
# The pages must load MathJax and the widget JavaScript from the book itself: npm fetches them.
# BROWSER_ARGS passes options to pytest, e.g. BROWSER_ARGS="-k sliders -x".
BROWSER_STAMP   := $(VENV)/.installed-browser
BROWSER_TIMEOUT ?= 1800
BROWSER_ARGS    ?=

$(BROWSER_STAMP): requirements-browser.txt $(STAMP)
	$(BIN)/python -m pip install -r requirements-browser.txt
	@touch $@

test-browser: $(BROWSER_STAMP)
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "error: $(CHROMIUM) not found; install Chromium (Debian: apt-get install chromium)" >&2; \
		echo "       or run make test-browser CHROMIUM=/path/to/chromium" >&2; \
		exit 1; \
	fi
	@if ! command -v $(NPM) >/dev/null 2>&1 && [ ! -f book/_static/vendor/VERSIONS ]; then \
		echo "error: npm not found; the browser tests need the book to serve MathJax and the" >&2; \
		echo "       widget JavaScript itself, which make book fetches with npm (install Node.js)" >&2; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory book
	@if [ ! -f book/_static/vendor/VERSIONS ]; then \
		echo "error: could not fetch MathJax and the widget JavaScript (see above)" >&2; \
		exit 1; \
	fi
	@limit=; command -v timeout >/dev/null 2>&1 && limit="timeout -k 30 $(BROWSER_TIMEOUT)"; \
	VAEBOOK_HTML=$(HTML_DIR) VAEBOOK_CHROMIUM=$(CHROMIUM) $$limit \
		$(BIN)/python -m pytest browser_tests -o addopts= -p no:nbval -p no:cacheprovider -rs \
		$(BROWSER_ARGS); \
	rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no browser tests" >&2; fi; \
	if [ $$rc -eq 124 ]; then echo "error: the browser tests ran over $(BROWSER_TIMEOUT) s" >&2; fi; \
	exit $$rc

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on some machines, make OpenBLAS use a slower kernel
# than the CPU's own: the benchmark runs without them and prints the kernel it got. Tests and CI
# leave them as they are.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/train_step.py

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o \
		\( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) book/_static/vendor
