# Integritetsportalen: `make run` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app portal
STAMP := $(VENV)/.installed
PORT ?= 5000
export PORT

.PHONY: help run test test-fast setup system venv migrate translations compile-translations \
        bench-worker bench-export bench-system bench-load bench-soak clean

help:
	@echo "make run           set up and start the web server and the worker (Ctrl-C stops both)"
	@echo "make test          set up and run the whole test suite (PostgreSQL, SQLite, Chromium)"
	@echo "make translations  extract, update and compile the message catalogues"

# --- setup ---------------------------------------------------------------------------------

system:
	@bash scripts/ensure-system.sh run

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 saknas / is missing ($(PYTHON))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

compile-translations: $(STAMP)
	@$(VENV)/bin/pybabel compile --statistics -f -d translations 2>&1 | grep -v '^compiling' || true

migrate: $(STAMP)
	@$(FLASK) db upgrade

setup: system venv compile-translations migrate

# --- the two commands ----------------------------------------------------------------------

run: setup
	@$(FLASK) seed-demo
	@echo "Startar webbservern på http://127.0.0.1:$(PORT) och arbetaren (Ctrl-C avslutar båda)."
	@exec $(VENV)/bin/honcho -f Procfile.dev start --port $(PORT)

test: $(STAMP) compile-translations
	@bash scripts/ensure-system.sh test
	@$(PY) scripts/run_tests.py

test-fast: $(STAMP) compile-translations
	@$(PY) -m pytest -q -m "not browser" -x

# --- benchmarks ----------------------------------------------------------------------------

bench-worker: setup
	$(PY) -m bench.worker_fork 20

bench-export: setup
	$(PY) -m bench.export

.PHONY: bench-retention
bench-retention: setup
	$(PY) -m bench.retention

# The load benchmark and the soak start their own PostgreSQL 15 cluster and redis-server
# (seeded once with 100 000 users under /var/tmp/portal-bench, reused while the seed matches),
# gunicorn with gunicorn.conf.py and the workers; all of it stops by itself at the end.
# Options: make bench-load LOAD_ARGS="--duration 3 --runs 3"; make bench-soak SOAK_ARGS=--faults
BENCH_PACKAGES := wrk redis-server postgresql-15
LOAD_ARGS ?=
SOAK_ARGS ?=

bench-system:
	@missing=(); for p in $(BENCH_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$$p"); \
	done; \
	if (($${#missing[@]})); then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "Installerar systempaket: $${missing[*]}"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$${missing[@]}" >/dev/null \
	    || { $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive \
	         apt-get install -y -qq --no-install-recommends "$${missing[@]}" >/dev/null; }; \
	fi

bench-load: setup bench-system
	$(PY) -m bench.load $(LOAD_ARGS)

bench-soak: setup bench-system
	$(PY) -m bench.soak --minutes 10 $(SOAK_ARGS)

# --- translations --------------------------------------------------------------------------

translations: $(STAMP)
	$(VENV)/bin/pybabel extract -F translations/babel.cfg -k _l -k lazy_gettext --no-location \
	    --sort-output --project Integritetsportalen -o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching \
	    --ignore-obsolete
	$(PY) scripts/fill_english_catalog.py translations/en/LC_MESSAGES/messages.po
	$(VENV)/bin/pybabel compile --statistics -f -d translations

clean:
	rm -rf $(VENV) instance/portal.db
