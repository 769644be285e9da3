# The two commands: `make run` and `make test`. Everything they need is installed into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PG_URL ?= postgres://postgres@127.0.0.1:5432/bookings
REDIS_TEST_URL ?= redis://127.0.0.1:6379/13

CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
APT_CHROMIUM := apt-get install -y chromium chromium-driver

.PHONY: run test test-postgres test-sqlite lint check worker beat bench bench-wrk soak clean install lock chromium

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
	touch $@

install: $(STAMP)

## Serve the demo on http://127.0.0.1:8000 (SQLite, in-process tasks, console email by default).
run: $(STAMP)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

## The whole suite on PostgreSQL + Redis, then the portable part again on SQLite.
test: $(STAMP) lint test-postgres test-sqlite

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL= $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=bookings_project.settings.production DEBUG=false \
	  SECRET_KEY=check-deploy-only-$$(printf 'x%.0s' {1..60})-not-a-real-secret \
	  DATABASE_URL=$(PG_URL) ALLOWED_HOSTS=bookings.example CACHE_URL=redis://127.0.0.1:6379/1 \
	  CELERY_BROKER_URL=redis://127.0.0.1:6379/0 EMAIL_URL=smtp://127.0.0.1:25 \
	  $(PY) manage.py check --deploy --fail-level WARNING

test-postgres: $(STAMP) chromium
	DATABASE_URL=$(PG_URL) TEST_WITH_REDIS=1 REDIS_TEST_URL=$(REDIS_TEST_URL) \
	  $(VENV)/bin/pytest -p no:cacheprovider

test-sqlite: $(STAMP)
	DATABASE_URL= $(VENV)/bin/pytest -p no:cacheprovider -m "not postgres and not redis and not browser"

## The browser tests (tests/browser/) drive Debian's Chromium: install it when it is missing
## (apt-get update only if the first try fails). If that fails too the run goes on and those
## tests fail, saying how to install it.
chromium:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  echo "Installing Debian's chromium and chromium-driver for the browser tests"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo $(APT_CHROMIUM) || { $$sudo apt-get update && $$sudo $(APT_CHROMIUM); } \
	    || echo "Could not install them: the browser tests will fail. Run as root: $(APT_CHROMIUM)"; \
	fi

## A Celery worker (and beat) against CELERY_BROKER_URL.
worker: $(STAMP)
	$(VENV)/bin/celery -A bookings_project worker -l info

beat: $(STAMP)
	mkdir -p .data
	$(VENV)/bin/celery -A bookings_project beat -l info --schedule .data/celerybeat-schedule

bench: $(STAMP)
	$(PY) bench/run.py

## The production configuration (PostgreSQL, Redis, gunicorn_conf.py) under wrk at a million
## bookings: per-scenario req/s, p50, p99 and the issue's ratios (bench/README.md). It seeds
## its databases when they are empty (about 6 minutes the first time) and installs wrk.
bench-wrk: $(STAMP)
	$(PY) bench/wrk_bench.py

## Re-pin every dependency (needs uv): edit pyproject.toml, then run this.
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .data

## A soak (bench/soak.py): mixed traffic against gunicorn + a Celery worker on PostgreSQL and
## Redis for SOAK_SECONDS (default 300), then the consistency check. Recreates SOAK_DATABASE_URL.
SOAK_SECONDS ?= 300
SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bookings_soak
soak: $(STAMP)
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS) --database-url $(SOAK_DATABASE_URL)
