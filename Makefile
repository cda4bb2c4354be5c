# The two commands: `make run` starts the whole system, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DEBUG ?= true

.PHONY: run test lint venv clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_article
	$(BIN)/python manage.py collectstatic --noinput -v 0
	PORT=$(PORT) $(BIN)/python -m comments_project.launcher

test: venv
	bash tests/browser/setup.sh
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	CELERY_QUEUE=comments-test-$$$$ $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
