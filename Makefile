# necreg — the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
WORKERS ?= 2
EVENT_FILE ?= events/nec-symposium.toml
PYTEST_ARGS ?=

.PHONY: run test lint format dev clean

# The venv is (re)built when pyproject.toml changes; the stamps record what was installed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/necreg db upgrade
	$(BIN)/necreg load-event --if-empty $(EVENT_FILE)
	$(BIN)/necreg ensure-organizer
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers $(WORKERS) --access-logfile - necreg.wsgi:app

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# A development server with reload and debug pages (never for production).
dev: $(VENV)/.installed
	$(BIN)/necreg db upgrade
	$(BIN)/necreg load-event --if-empty $(EVENT_FILE)
	$(BIN)/necreg run --debug --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
