# VAEs from Scratch. Two commands on a fresh machine: `make book` and `make test`.
# Everything installs into .venv; the targets call .venv/bin/... so nothing needs activating.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
NPM      ?= npm
CHROMIUM ?= /usr/bin/chromium

# VAEBOOK_FAST=1 (e.g. make test-browser VAEBOOK_FAST=1) builds the book with short training
# runs into _build/fast/ instead, with an execution cache of its own (book/_scripts/execute.py
# also keys the cache on VAEBOOK_FAST, so fast and full outputs never mix).
# JS=cdn builds a book whose pages load MathJax and the widget JavaScript from the CDN, as a
# build without npm does, into _build/cdn/ (or _build/fast-cdn/); it starts from a copy of the
# execution cache of the other build, so no notebook runs twice. JS=auto (the default) uses the
# files fetched with npm when they are there; JS=vendor requires them.
FAST := $(if $(filter 1 true yes,$(shell echo '$(VAEBOOK_FAST)' | tr A-Z a-z)),1,)
JS   ?= auto
ifeq ($(filter auto vendor cdn,$(JS)),)
$(error JS must be auto, vendor or cdn, not "$(JS)")
endif
VARIANT    := $(subst $(eval) ,-,$(strip $(if $(FAST),fast) $(if $(filter cdn,$(JS)),cdn)))
BUILD_DIR  := _build$(if $(VARIANT),/$(VARIANT)/_build)
BOOK_FLAGS := $(if $(VARIANT),--path-output _build/$(VARIANT))
BOOK_ENV   := $(if $(FAST),VAEBOOK_FAST=1) VAEBOOK_JS=$(JS)
SEED_DIR   := $(if $(filter cdn,$(JS)),_build$(if $(FAST),/fast/_build))
HTML_DIR   := $(BUILD_DIR)/html

# Notebooks executed at a time (book/_scripts/execute.py), each with BLAS_THREADS threads.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# BLAS threads for each notebook the book executes. The chapters' matrices are small: one thread
# is as fast on an idle machine, and several threads waiting on each other are up to ten times
# slower when anything else runs on the machine (and JOBS notebooks run side by side).
BLAS_THREADS ?= 1

.DEFAULT_GOAL := help
.PHONY: help book mnist test test-build test-browser lab bench clean distclean

help:
	@echo "make book       build the HTML book into _build/html (installs .venv first)"
	@echo "make test       run the tests and every notebook (VAEBOOK_FAST=1)"
	@echo "make test-build check make book itself on a small book (caching, JavaScript)"
	@echo "make test-browser  build the book and check every page in Chromium"
	@echo "                (VAEBOOK_FAST=1: short training runs, built into _build/fast;"
	@echo "                JS=cdn: the pages load their JavaScript from the CDN, into _build/cdn)"
	@echo "make mnist      download MNIST for chapter 11 (checked against pinned hashes)"
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
	@if [ "$(JS)" = cdn ]; then \
		echo "JS=cdn: math and widgets in the book will load from cdn.jsdelivr.net"; \
	elif NPM=$(NPM) bash book/_scripts/fetch_static.sh; then :; \
	elif [ "$(JS)" = vendor ]; then \
		echo "error: JS=vendor, but MathJax and the widget JavaScript could not be fetched" >&2; \
		exit 1; \
	elif command -v $(NPM) >/dev/null 2>&1; then \
		echo "notice: could not fetch MathJax and the widget JavaScript; the book will load them from CDNs"; \
	else \
		echo "notice: npm not found; math and widgets in the book will load from CDNs (install Node.js to vendor them)"; \
	fi
	@if [ -n "$(SEED_DIR)" ] && [ ! -d $(BUILD_DIR)/.jupyter_cache ] && [ -d $(SEED_DIR)/.jupyter_cache ]; then \
		mkdir -p $(BUILD_DIR) && cp -a $(SEED_DIR)/.jupyter_cache $(SEED_DIR)/.vaebook-* $(BUILD_DIR)/; \
	fi
	@# Drops the cache when src/vaebook, the requirements or the data changed, then runs the
	@# notebooks that are not cached, JOBS at a time; a failing cell stops the build here.
	$(BOOK_ENV) OPENBLAS_NUM_THREADS=$(BLAS_THREADS) OMP_NUM_THREADS=$(BLAS_THREADS) \
		$(BIN)/python book/_scripts/execute.py $(BUILD_DIR) --jobs $(JOBS)
	$(BOOK_ENV) OPENBLAS_NUM_THREADS=$(BLAS_THREADS) OMP_NUM_THREADS=$(BLAS_THREADS) \
		$(BIN)/jupyter-book build . $(BOOK_FLAGS) -W --keep-going
	@echo
	@echo "Open the book at: file://$(CURDIR)/$(HTML_DIR)/book/intro.html"

# MNIST for chapter 11 (which runs its MNIST section only when the files are on disk): downloads
# the four files once, checked against the SHA-256 pinned in src/vaebook/data.py, into the data
# folder ($$VAEBOOK_DATA, else the per-user cache folder). The Pages workflow runs this.
mnist: $(STAMP)
	$(BIN)/python -c 'from vaebook.data import load_mnist; load_mnist("mnist", progress=False)'

# Two pytest workers share the two cores, so each gets one BLAS thread (no oversubscription).
# tests/test_build.py builds a small book five times (a minute or two): make test-build runs it.
test: $(STAMP)
	@VAEBOOK_FAST=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
		$(BIN)/python -m pytest -n 2 --dist loadfile --ignore=tests/test_build.py; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

# make book itself: the execution cache is dropped when src/vaebook changes (also when only the
# cached items are restored, as the Pages workflow does), notebooks run in parallel before Sphinx
# reads them from the cache, vendored or CDN JavaScript, a failing cell fails the build.
test-build: $(STAMP)
	@OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
		$(BIN)/python -m pytest tests/test_build.py -rs; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

# Browser checks of the built book (browser_tests/): Playwright drives the system Chromium
# through every page the table of contents lists; screenshots land in _build/screenshots/.
# The pages load MathJax and the widget JavaScript from the book itself (npm fetches them); with
# JS=cdn they load them from the CDN, and the tests answer those requests from the npm packages
# (_build/npm), so no request leaves the machine either way.
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
	@if ! NPM=$(NPM) bash book/_scripts/fetch_static.sh --npm; then \
		echo "error: the browser tests need MathJax and the widget JavaScript from npm: the" >&2; \
		echo "       book serves them itself, or (JS=cdn) they stand in for the CDN (install Node.js)" >&2; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory book JS=$(if $(filter cdn,$(JS)),cdn,vendor)
	@limit=; command -v timeout >/dev/null 2>&1 && limit="timeout -k 30 $(BROWSER_TIMEOUT)"; \
	VAEBOOK_HTML=$(HTML_DIR) VAEBOOK_CHROMIUM=$(CHROMIUM) \
	VAEBOOK_SCREENSHOTS=_build/screenshots/$(or $(VARIANT),full) \
	$(if $(filter cdn,$(JS)),VAEBOOK_CDN_STANDIN=_build/npm) $$limit \
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
