# VAEs from Scratch. Two commands on a fresh machine: `make book` and `make test`.
# Everything installs into .venv; the targets call .venv/bin/... so nothing needs activating.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HASH   := _build/.vaebook-src-hash
NPM    ?= npm

.DEFAULT_GOAL := help
.PHONY: help book test lab bench clean distclean

help:
	@echo "make book       build the HTML book into _build/html (installs .venv first)"
	@echo "make test       run the tests and every notebook (VAEBOOK_FAST=1)"
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
	@# execute_notebooks: cache does not see changes in src/vaebook: clear the cache when they change.
	@mkdir -p _build
	@new=$$(LC_ALL=C sha256sum src/vaebook/*.py 2>/dev/null | sha256sum | cut -d' ' -f1); \
	if [ "$$new" != "$$(cat $(HASH) 2>/dev/null)" ] && [ -d _build/.jupyter_cache ]; then \
		echo "src/vaebook changed since the last build: clearing _build/.jupyter_cache"; \
		rm -rf _build/.jupyter_cache; \
	fi; \
	echo "$$new" > $(HASH).new
	$(BIN)/jupyter-book build . -W --keep-going
	@mv $(HASH).new $(HASH)
	@echo
	@echo "Open the book at: file://$(CURDIR)/_build/html/book/intro.html"

test: $(STAMP)
	@VAEBOOK_FAST=1 $(BIN)/python -m pytest -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(BIN)/python benchmarks/train_step.py

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o \
		\( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) book/_static/vendor
