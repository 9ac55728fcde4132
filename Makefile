# One entry point for people and CI. Every target sets up what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NPM_STAMP := node_modules/.installed-stamp

.PHONY: setup demo test lint fmt pg browser bench bench-scale clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

setup: $(STAMP) $(NPM_STAMP)

# PostgreSQL 15 is local on this machine kind; start it when it is down.
pg:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL did not start" >&2; exit 1

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Debian's chromium for the browser tests (tests/e2e); playwright-core never downloads one.
# A CJK font so that the Chinese pages' screenshots show characters.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	fc-list :lang=zh | grep -q . || (apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei)

test: setup pg browser lint
	$(PY) -m pytest -q -p no:cacheprovider

demo: setup
	$(VENV)/bin/consent-ledger demo

bench: setup pg
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) -m pytest bench -q -p no:cacheprovider --benchmark-enable -m 'not slow or slow'

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache
