# zfbook: the two commands are `make book` and `make test` (see README.md).
#
#   make book      set up .venv, execute every chapter, build the HTML book
#   make test      set up .venv, build the book from the committed outputs, pytest tests/,
#                  then strict nbval over every chapter listed in _toc.yml
#   make execute NB=book/x.ipynb   re-execute a chapter in place and save its outputs
#                  (without NB: every chapter); do this whenever the library changes
#   make html      build the HTML book from the committed outputs (no execution)
#   make setup     only create/update .venv
#   make clean     remove _build/
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON3 ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
JB      := $(VENV)/bin/jupyter-book
# The setup stamp is keyed on the content of what is installed: a changed
# requirements.txt or pyproject.toml reinstalls, anything else skips.
SETUP_KEY := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP     := $(VENV)/.zfbook-setup-$(SETUP_KEY)
SANITIZE  := tests/nbval_sanitize.cfg
# Tests and chapters run on every core (pytest-xdist), each process with one BLAS/OpenMP thread
# so that the processes do not fight over the cores; a test file (a chapter) stays on one
# process. `make test XDIST=` runs them one after another.
XDIST     ?= -n auto --dist loadfile
PARALLEL  := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# The book is executed and checked as if offline, online or not: cells that need downloaded
# weights (book/photos.ipynb) print one line instead (zfbook.sources.OFFLINE_ENV), so that
# the pages and nbval do not depend on the network. `make book ZFBOOK_OFFLINE=` runs them.
export ZFBOOK_OFFLINE ?= 1
# `make book` executes into jupyter-book's cache; `make html` and `make test` build from the
# outputs committed in the notebooks (which nbval checks against a fresh execution).
HTML_CONFIG := _build/_config.committed-outputs.yml
# The book's own static files (_static/), removed from _build before each build so that
# an edited one is copied again.
OWN_STATIC = $(addprefix _build/html/,$(wildcard _static/*)) _build/html/mathjax

.PHONY: help setup book html test execute clean

help:
	@sed -n '1,10p' Makefile | sed 's/^# \{0,1\}//'

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || { echo "creating $(VENV)"; $(PYTHON3) -m venv $(VENV); }
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -e .
	@rm -f $(VENV)/.zfbook-setup-*
	@touch $@

# jupyter-book's cache re-executes a chapter when its code cells change; the library and
# the checkpoints are keyed here, so that changing them re-executes every chapter.
LIBRARY_KEY = $$(find zfbook $(wildcard data) requirements.txt -type f ! -path '*__pycache__*' \
                 -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
CACHE := _build/.jupyter_cache

book: setup
	@key=$(LIBRARY_KEY); \
	  if [ ! -f $(CACHE)/.library-$$key ]; then rm -rf $(CACHE); fi; \
	  rm -rf $(OWN_STATIC); \
	  $(JB) build . -W --keep-going; \
	  touch $(CACHE)/.library-$$key
	@echo
	@echo "The book: $(CURDIR)/_build/html/index.html"

html: setup
	@mkdir -p _build
	@$(PY) -c 'import os, sys, yaml; c = yaml.safe_load(open("_config.yml")); \
	  c["execute"]["execute_notebooks"] = "off"; ext = c["sphinx"].get("local_extensions", {}); \
	  ext.update({k: os.path.abspath(v) for k, v in ext.items()}); \
	  yaml.safe_dump(c, open(sys.argv[1], "w"))' $(HTML_CONFIG)
	@rm -rf $(OWN_STATIC)   # Sphinx 7.4 never overwrites a static file it copied before
	$(JB) build . --all -W --keep-going -q --config $(HTML_CONFIG)  # --all: an incremental build would not copy the static files back
	@echo "The book: $(CURDIR)/_build/html/index.html"

# Any failing step stops `make test`, including pytest's exit code 5 (no test collected).
test: setup
	@start=$$SECONDS; $(MAKE) --no-print-directory html; \
	  echo "== book built from the committed outputs in $$((SECONDS - start)) s"
	@start=$$SECONDS; ZFBOOK_REQUIRE_BOOK=1 $(PARALLEL) $(PY) -m pytest $(XDIST) --durations=15 tests/; \
	  rc=$$?; echo "== pytest tests/ took $$((SECONDS - start)) s"; exit $$rc
	@echo "== nbval over every chapter in _toc.yml"
	@start=$$SECONDS; chapters=$$($(PY) tools/chapters.py); \
	  echo "$(PY) -m pytest $(XDIST) --nbval ..." $$chapters; \
	  $(PARALLEL) $(PY) -m pytest $(XDIST) -p tools.nbval_durations -p tools.nbval_floats --nbval --nbval-current-env \
	  --nbval-sanitize-with $(SANITIZE) --nbval-cell-timeout=600 $$chapters; \
	  rc=$$?; echo "== nbval took $$((SECONDS - start)) s"; exit $$rc

execute: setup
	$(PY) tools/execute.py $(NB)

clean:
	rm -rf _build
