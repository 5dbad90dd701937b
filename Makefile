# genzoo: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch and torchvision pinned to the releases pip installs from local disk on the project machines
TORCH  := torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# a test reference for the attacks; --no-deps: its requests~=2.25 pin would downgrade requests and idna
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)  ## train a small DCGAN on the embedded data; writes runs/demo (samples, losses, report)
	$(BIN)/genzoo demo

test: $(STAMP)  ## the default test suite (no slow or GPU tests), as two workers (one file per worker at a time)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
