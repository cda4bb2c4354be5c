# The two commands: `make run` starts the whole system, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# `make bench` serves from what production installs (requirements.txt only): the
# test-only packages would add about 9 MiB to every web worker.
PROD_VENV := .venv-prod
PROD_BIN := $(PROD_VENV)/bin
PORT ?= 8000
export DEBUG ?= true

.PHONY: run test lint venv clean bench bench-smoke

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

$(PROD_BIN)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PROD_BIN)/python || $(PYTHON) -m venv $(PROD_VENV)
	$(PROD_BIN)/pip install --quiet --upgrade pip
	$(PROD_BIN)/pip install --quiet -r requirements.txt
	touch $@

run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_article
	$(BIN)/python manage.py collectstatic --noinput -v 0
	PORT=$(PORT) $(BIN)/python -m comments_project.launcher

test: venv
	bash tests/browser/setup.sh
	bash bench/setup.sh
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	CELERY_QUEUE=comments-test-$$$$ CACHE_KEY_PREFIX=comments-test-$$$$ $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The HTTP benchmark (not part of `make test`): PostgreSQL, Redis and wrk on this machine.
# BENCH_DATABASE_URL / BENCH_REDIS_URL choose the database; BENCH_ARGS adds options.
bench: $(PROD_BIN)/.installed
	bash bench/setup.sh
	$(PROD_BIN)/python bench/run.py --write-docs $(BENCH_ARGS)

bench-smoke: venv
	bash bench/setup.sh
	$(BIN)/python bench/run.py --smoke $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(PROD_VENV) staticfiles .pytest_cache
