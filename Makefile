# Two commands for a newcomer (see README): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

BENCHES = b1_fanout b2_inbound b2_ceiling b2_calls b3_missed b4_enroll b5_memory b6_apscheduler b7_sqlite_writes b8_crash b9_peak b10_celery

.PHONY: run test lint test-sqlite test-postgres setup clean bench translations $(BENCHES)

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

setup: $(BIN)/.installed

## The benchmarks' own extra (Celery, for B10's peer) on top of the test install.
$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test,bench]'
	touch $@

## Set up from nothing and run the embedded default: SQLite file, console SMS, demo data,
## web server (gunicorn) and scheduler together on http://127.0.0.1:5000/
run: setup
	$(BIN)/flask --app wsgi serve-embedded

## Set up and run the whole suite on SQLite, then on PostgreSQL when it is reachable
## (CI=true makes PostgreSQL and Chromium mandatory instead of skipped).
test: setup lint
	scripts/ensure-chromium
	$(MAKE) test-sqlite
	@if scripts/postgres-ready "$(PG_TEST_URL)"; then $(MAKE) test-postgres; \
	 elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(PG_TEST_URL) and CI requires it" >&2; exit 1; \
	 else echo "PostgreSQL not reachable: skipped the PostgreSQL run (CI does not skip it)"; fi

## The architecture and the code's form, checked before any test runs (see ARCHITECTURE.md):
## import-linter's layer contracts, ruff's lint and import order, ruff's formatting (lines <= 120).
lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .

## Two workers for everything but the browser (each test has its own database, so they cannot meet), then the
## browser tests in one process (one Chromium for the session).
PYTEST_PARALLEL = -n 2 -m "not browser"
test-sqlite: setup
	$(BIN)/pytest $(PYTEST_PARALLEL)
	$(BIN)/pytest -m browser

test-postgres: setup
	TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest $(PYTEST_PARALLEL)
	TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest -m browser

## The nurse pages' catalogue: extract every marked string, merge it into zh-CN's messages.po (translate the new
## ones there), compile messages.mo. tests/backend/test_translations.py fails while any string is untranslated.
TRANSLATIONS = backend/web/translations
translations: setup
	$(BIN)/pybabel -q extract -F babel.cfg -k _l --no-location --sort-output -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel -q update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel -q compile -d $(TRANSLATIONS)

## Benchmarks (bench/README.md), each from a clean clone with one command: `make bench` runs them
## all (~30 min), `make b3_missed` one of them, `make b4_enroll ARGS="--n 200 --profile"` with options.
bench: $(BIN)/.installed-bench
	bench/run_all.sh

$(BENCHES): $(BIN)/.installed-bench
	$(BIN)/python bench/$@.py $(ARGS)

clean:
	rm -rf $(VENV) instance artifacts
