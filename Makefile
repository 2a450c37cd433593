# Everything a newcomer needs: `make run` serves the site with demo data on
# http://127.0.0.1:8000, `make test` runs the whole suite. Both set up .venv first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEV_ENV := DEBUG=1

.PHONY: venv run migrate test test-fast lint browser-deps bench two-servers clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

migrate: venv
	$(DEV_ENV) $(PY) manage.py migrate --noinput

run: migrate
	$(DEV_ENV) $(PY) manage.py seed_demo
	$(DEV_ENV) $(PY) -m social.serve --port $(PORT)

# The whole suite: unit, end-to-end (real daphne), browser (skips with a reason
# when /usr/bin/chromium is missing; `make browser-deps` installs it).
test: venv
	$(DEV_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check .

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then echo "chromium present"; \
	elif [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "run as root (or sudo apt-get install chromium) to enable browser tests"; fi
	@# axe-core (pinned in package-lock.json), injected into pages by the browser tests.
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; \
	else echo "no npm: the browser tests' accessibility checks are skipped"; fi

# Two daphne processes on 8001/8002 sharing local Redis and PostgreSQL.
two-servers: venv
	deploy/two_servers.sh

bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3* test-db.sqlite3* staticfiles test-artifacts .pytest_cache
