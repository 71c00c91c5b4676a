# necreg — the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
WORKERS ?= 2
EVENT_FILE ?= events/nec-symposium.toml
# The first administrator's e-mail, used only while the database has no organizer. Left
# empty, `make run` asks for it on a terminal (make run ADMIN_EMAIL=you@example.org elsewhere).
ADMIN_EMAIL ?=
PYTEST_ARGS ?=

BENCH_ARGS ?=

.PHONY: run test lint format dev bench clean

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
	$(BIN)/necreg ensure-organizer $(if $(ADMIN_EMAIL),--email '$(ADMIN_EMAIL)')
	BIN=$(BIN) scripts/run.sh $(HOST) $(PORT) $(WORKERS)

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

# Benchmarks (not tests): necreg against hello-world under the same gunicorn settings.
# On SQLite by default; NECREG_BENCH_DATABASE_URL=postgresql+psycopg://... for PostgreSQL.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
