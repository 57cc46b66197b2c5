# Two commands on a fresh machine: `make quick` (the laptop preset of the workflow) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: venv quick test all clean

$(BIN)/activate-stamp: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

venv: $(BIN)/activate-stamp

quick: venv
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1 --configfile config/quick.yaml

all: venv
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1

# Tests on CORES workers, a module to a worker: the module-scoped fixtures (the end-to-end run) are built once.
test: venv
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile --durations=15

clean:
	rm -rf results logs .snakemake report.html
