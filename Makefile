# Everything a newcomer needs: `make run` serves the site with demo data on
# http://127.0.0.1:8000 (and runs a job worker that prints email digests), `make test` runs the whole suite. Both set up .venv first:
# `make venv` installs what the service runs with (requirements.txt), `make dev-venv`
# adds the tests and tools (requirements-dev.txt). manage.py and social.serve read
# .env when it exists (copy .env.example), so run, two-servers, superuser and every
# manage.py command use the same DATABASE_URL and REDIS_URL (the tests never read it);
# variables set on the command line win.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEV_ENV := DEBUG=1

.PHONY: venv dev-venv run migrate superuser test lint browser-deps bench two-servers clean

venv: $(VENV)/.installed

dev-venv: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: venv
	$(DEV_ENV) $(PY) manage.py migrate --noinput

run: migrate
	$(DEV_ENV) $(PY) manage.py seed_demo
	@echo "Serving http://127.0.0.1:$(PORT)/ (Ctrl-C stops it). An admin for /admin/: make superuser"
	@# A background-job worker (email digests on the console, pruning) beside daphne; both stop together.
	@$(DEV_ENV) SITE_URL=http://127.0.0.1:$(PORT) $(PY) manage.py jobs_worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(DEV_ENV) SITE_URL=http://127.0.0.1:$(PORT) $(PY) -m social.serve --port $(PORT)

# An account for /admin/ (the admin actions in the docs), in the database .env names.
superuser: migrate
	$(DEV_ENV) $(PY) manage.py createsuperuser

# The whole suite: unit, end-to-end (real daphne), browser (skips with a reason
# when /usr/bin/chromium is missing; `make browser-deps` installs it).
test: dev-venv
	$(DEV_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: dev-venv
	$(PY) -m ruff check .

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
browser-deps:
	@# fonts-noto-color-emoji: the chat's reaction emoji in screenshots (not tofu boxes).
	@if [ -x /usr/bin/chromium ] && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then echo "chromium present"; \
	elif [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji; \
	else echo "run as root (or sudo apt-get install chromium fonts-noto-color-emoji) to enable browser tests"; fi
	@# axe-core (pinned in package-lock.json), injected into pages by the browser tests.
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; \
	else echo "no npm: the browser tests' accessibility checks are skipped"; fi

# Two daphne processes sharing Redis and PostgreSQL: PORTS="8001 8002", DATABASE_URL
# and REDIS_URL from the environment or .env (defaults in deploy/two_servers.sh).
two-servers: venv
	deploy/two_servers.sh

bench: dev-venv
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3* test-db.sqlite3* staticfiles test-artifacts .pytest_cache
