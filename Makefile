# Two entry points for a newcomer (see README.md):
#   make run   - create .venv if missing, install the project, run the DVC pipeline
#   make test  - create .venv if missing, install the project, run the test suite
# pyenv users: .python-version selects Python 3.12.

PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tested versions of every dependency, used as pip constraints (refresh with `make lock`).
LOCK   := requirements.lock
EXTRAS := test,study

.PHONY: run test test-all bench clean-venv lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c $(LOCK) -e '.[$(EXTRAS)]'
	touch $(STAMP)

# The stages call the console scripts (pde-data, surrogate) and python of the venv.
run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q

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
