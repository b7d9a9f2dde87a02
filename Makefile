# Two entry points for a newcomer (see README.md):
#   make run   - create .venv if missing, install the project, run the DVC pipeline
#   make test  - create .venv if missing, install the project, lint (ruff), run the test suite, build the docs
# pyenv users: .python-version selects Python 3.12.

PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tested versions of every dependency, used as pip constraints (refresh with `make lock`).
LOCK   := requirements.lock
EXTRAS := test,study,docs

.PHONY: run test test-all docs bench clean-venv lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c $(LOCK) -e '.[$(EXTRAS)]'
	touch $(STAMP)

# The stages call the console scripts (pde-data, surrogate) and python of the venv.
run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	$(MAKE) docs

# The documentation site (docs/ -> docs/_build/html): API reference from the docstrings, the reports, and the
# gallery, whose examples run during the build. Warnings are errors; an example that fails fails the build.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "not gpu"

clean-venv:
	rm -rf $(VENV)

# Re-resolve the newest versions that pyproject.toml allows in a scratch venv and pin them in $(LOCK).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install '.[$(EXTRAS)]'
	{ sed -n '/^#/p' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^pde-surrogate'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .venv-lock
