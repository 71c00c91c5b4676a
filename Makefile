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

.PHONY: run test lint format dev bench clean lock

# The venv is (re)built when pyproject.toml or a lock changes; the stamps record what was
# installed. Dependencies come only from the locks in requirements/, each file checked against
# its sha256 (--require-hashes), then the project itself without dependencies (--no-deps).
PIP := $(BIN)/python -m pip --disable-pip-version-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml requirements/main.txt | $(BIN)/python
	$(PIP) install --quiet --require-hashes -r requirements/main.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements/test.txt | $(BIN)/python
	$(PIP) install --quiet --require-hashes -r requirements/test.txt
	$(PIP) install --quiet --no-deps -e .
	touch $(VENV)/.installed $@

# `make lock` resolves pyproject.toml again into requirements/test.txt (runtime and test extra)
# and requirements/main.txt (runtime, resolved within test.txt so that a package has the same
# version in both), for CPython 3.11 on Linux, with the sha256 of every file PyPI holds for each
# pin. The resolver is uv, pinned below and installed on first use into a venv of its own
# ($(VENV)/lock-tools, never mixed with the project's packages). It reads PyPI only: no uv.toml,
# no UV_ index variables, and uv never reads pip's settings (such as a local mirror's). Pins
# already in the locks are kept while pyproject.toml admits them; `make lock LOCK_ARGS=--upgrade`
# takes the newest versions the bounds allow, LOCK_ARGS="--upgrade-package flask" one package.
# Run `make test` after, then commit the locks.
UV_VERSION := 0.13.9
UV := $(VENV)/lock-tools/bin/uv
LOCK_ARGS ?=
UV_COMPILE = env -u UV_INDEX -u UV_EXTRA_INDEX_URL -u UV_FIND_LINKS \
	$(UV) pip compile --quiet --no-config --default-index https://pypi.org/simple \
	--python-version 3.11 --python-platform linux --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_ARGS)

$(UV):
	$(PYTHON) -m venv $(VENV)/lock-tools
	$(VENV)/lock-tools/bin/python -m pip install --quiet --disable-pip-version-check \
		uv==$(UV_VERSION)

lock: | $(UV)
	$(UV_COMPILE) --extra test -o requirements/test.txt pyproject.toml
	$(UV_COMPILE) -c requirements/test.txt -o requirements/main.txt pyproject.toml

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
