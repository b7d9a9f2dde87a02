# Two entry points for a newcomer (see README.md):
#   make run   - create .venv if missing, install the project, run the DVC pipeline
#   make test  - create .venv if missing, install the project, run the test suite
# pyenv users: .python-version selects Python 3.12.

PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-all bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

# The stages call the console scripts (pde-data, surrogate) and python of the venv.
run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or mpi or not (slow or mpi)"

clean-venv:
	rm -rf $(VENV)
