# Chapter 2 - Efficient Inference & Serving
#   make lab    set up if needed, then start JupyterLab at the course root
#   make test   set up if needed, then run the whole suite (unit tests, theory code, every notebook)
#   make book   the course as an offline HTML site, notebooks as the last test run executed them
SHELL := /bin/bash
PY := .venv/bin/python
RESULTS := test-results
NOTEBOOK_TIMEOUT ?= 300
# Which notebooks `make notebooks` runs (a folder or files); CI's matrix runs one track per job.
NOTEBOOKS ?= 02-Labs
LAB_PORT ?= 8888
export COURSE_PROFILE ?=

.PHONY: help setup setup-system lab test unit integration docs notebooks nbclean check status book bench clean clean-cache

help:
	@echo "make lab | test | unit | integration | setup | setup-system | check | status | book | bench | nbclean | clean"

setup:
	@bash 00-Course_Setup/setup.sh

setup-system:
	@bash 00-Course_Setup/setup_system.sh

# JupyterLab refuses to run as root without --allow-root (containers often run as root), so the
# flag is passed only then. 00-Course_Setup/jupyter holds the course's Jupyter configuration
# (the news pop-up is disabled).
LAB_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: setup
	@echo "JupyterLab: open the URL printed below (with its token). Ctrl-C stops it."
	JUPYTER_CONFIG_PATH="$(CURDIR)/00-Course_Setup/jupyter" $(PY) -m jupyterlab --no-browser --ip=127.0.0.1 \
	  --port=$(LAB_PORT) --ServerApp.root_dir="$(CURDIR)" $(LAB_ROOT_FLAG)

# The whole suite. Notebooks run in the `ci` profile unless COURSE_PROFILE says otherwise.
test: setup
	@mkdir -p $(RESULTS); rm -rf $(RESULTS)/*.xml $(RESULTS)/executed; status=0; \
	$(MAKE) --no-print-directory unit || status=1; \
	$(MAKE) --no-print-directory integration || status=1; \
	$(MAKE) --no-print-directory docs || status=1; \
	$(MAKE) --no-print-directory notebooks || status=1; \
	$(MAKE) --no-print-directory status; \
	$(MAKE) --no-print-directory book || status=1; \
	exit $$status

# Tests that start no server and load no model (under a minute): run them on every change.
unit:
	$(PY) -m pytest tests -q -m "not server and not model" --junitxml=$(RESULTS)/unit.xml

# Tests against real servers (Triton, vLLM, Prometheus, the gateway) or a real model.
integration:
	$(PY) -m pytest tests -q -m "server or model" --junitxml=$(RESULTS)/integration.xml

docs:
	$(PY) -m pytest --markdown-docs -q 01-Theory --junitxml=$(RESULTS)/theory.xml -p no:cacheprovider

# Only notebooks, with the reference answers (COURSE_SOLUTIONS=1, llmserve.course.exercises): every exercise
# check runs its correct path and must reject a wrong answer. COURSE_SOLUTIONS=0 runs them as a student sees them.
# python_files matches nothing, so test files a lab ships for its own pipeline (Triton Lab 2.5's
# deploy/ci/tests, run by that pipeline and by tests/labs) are not collected here.
notebooks:
	COURSE_PROFILE=$${COURSE_PROFILE:-ci} COURSE_SOLUTIONS=$${COURSE_SOLUTIONS:-1} COURSE_EXECUTED_DIR="$(CURDIR)/$(RESULTS)/executed" $(PY) -m pytest --nbmake --nbmake-timeout=$(NOTEBOOK_TIMEOUT) \
	  --nbmake-kernel=python3 -o python_files=__notebooks_only__ -v $(NOTEBOOKS) \
	  --junitxml=$(RESULTS)/notebooks.xml -p no:cacheprovider

# Strip outputs and normalise metadata of every notebook (the hygiene test asks for this).
nbclean:
	$(PY) -m llmserve.course.nbclean 02-Labs

check:
	@$(PY) -m llmserve.course.checks

status:
	@$(PY) -m llmserve.course.status $(RESULTS) CHAPTER_02_STATUS.md

# The course as a static site that works offline (test-results/book/index.html): README, theory, lab
# READMEs, status, and every notebook with the outputs `make notebooks` kept in test-results/executed.
book:
	$(PY) -m llmserve.course.book --executed $(RESULTS)/executed --out $(RESULTS)/book

bench: setup
	$(PY) -m llmserve.bench

clean:
	rm -rf .venv .venv-triton .venv-kserve $(RESULTS) .pytest_cache build src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +

clean-cache:
	rm -rf "$${COURSE_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/llm-serving-course}"
