# Every target installs what it needs first; nothing but Python 3.11 and make is assumed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_YES := 1
export PIPENV_NOSPIN := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
export PYTHONPATH := $(CURDIR):$(CURDIR)/api_service
PIPENV := python3 -m pipenv
PORT ?= 8000
# PostgreSQL when one answers on 127.0.0.1:5432 (as in CI), else SQLite.
FMA_TEST_DATABASE ?= $(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgres || echo sqlite)
PYTEST_ARGS ?=

.PHONY: install run migrate test test-postgres test-sqlite test-and-coverage lint fma-django-compile bench clean

install: $(VENV)/.installed

$(VENV)/.installed: Pipfile.lock
	@python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet pipenv
	$(PIPENV) sync --dev
	@touch $@

migrate: install
	cd api_service && ../$(PY) manage.py migrate --no-input

run: migrate
	$(PY) api_service/local_server.py --port $(PORT)

test: install
	FMA_TEST_DATABASE=$(FMA_TEST_DATABASE) $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: install
	FMA_TEST_DATABASE=postgres $(PY) -m pytest $(PYTEST_ARGS)

test-sqlite: install
	FMA_TEST_DATABASE=sqlite $(PY) -m pytest $(PYTEST_ARGS)

test-and-coverage: install
	FMA_TEST_DATABASE=$(FMA_TEST_DATABASE) $(PY) -m pytest --cov --cov-report=term-missing --cov-report=html $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/pre-commit run --all-files

fma-django-compile: install
	$(PY) -m pip wheel --no-deps --wheel-dir artifacts ./fma_django_connectors

bench: install
	$(PY) bench/aggregate.py

clean:
	rm -rf $(VENV) artifacts build .pytest_cache .ruff_cache htmlcov .coverage
