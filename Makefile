# The two commands of a fresh machine:  make demo   and   make check
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo check test fmt clean

$(VENV)/.installed: pyproject.toml src/pyproject.toml constraints.txt scripts/setup
	./scripts/setup
	touch $@

setup: $(VENV)/.installed

demo: setup
	./scripts/demo inventory

check: setup
	./scripts/check

test: setup
	$(PY) -m pytest

fmt: setup
	$(VENV)/bin/ruff format src tui tests benchmarks
	$(VENV)/bin/ruff check --fix src tui tests benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
