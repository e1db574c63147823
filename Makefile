# Two commands: `make run` (install, migrate, demo tenant, serve) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install system-deps services run test test-unit bench clean

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# mysqlclient compiles against libmysqlclient; install it where it is missing (root on CI).
system-deps:
	@if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists mariadb 2>/dev/null; then \
		echo "installing default-libmysqlclient-dev and pkg-config"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-libmysqlclient-dev pkg-config >/dev/null; \
	fi

# PostgreSQL, MariaDB and Redis normally run already; start any that does not answer.
services:
	@scripts/services.sh

run: install services
	@scripts/run.sh

test: install services
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -q tests/unit

bench: install services
	$(PY) benchmarks/execute_latency.py

clean:
	rm -rf $(VENV) .pytest_cache
