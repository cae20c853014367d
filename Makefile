# Two commands for a newcomer (see README): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres setup clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

setup: $(BIN)/.installed

## Set up from nothing and run the embedded default: SQLite file, console SMS, demo data,
## web server (gunicorn) and scheduler together on http://127.0.0.1:5000/
run: setup
	$(BIN)/flask --app wsgi serve-embedded

## Set up and run the whole suite on SQLite, then on PostgreSQL when it is reachable
## (CI=true makes PostgreSQL and Chromium mandatory instead of skipped).
test: setup
	scripts/ensure-chromium
	$(MAKE) test-sqlite
	@if scripts/postgres-ready "$(PG_TEST_URL)"; then $(MAKE) test-postgres; \
	 elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(PG_TEST_URL) and CI requires it" >&2; exit 1; \
	 else echo "PostgreSQL not reachable: skipped the PostgreSQL run (CI does not skip it)"; fi

test-sqlite: setup
	$(BIN)/pytest

test-postgres: setup
	TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest

clean:
	rm -rf $(VENV) instance artifacts
