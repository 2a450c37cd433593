#!/usr/bin/env bash
# Try the scaled-out layout by hand: two daphne processes on 8001 and 8002
# sharing the local Redis and PostgreSQL. Open http://127.0.0.1:8001 in one
# browser and http://127.0.0.1:8002 in another; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG=1
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/5}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/social_dev}"
createdb -h 127.0.0.1 -U postgres social_dev 2>/dev/null || true
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
.venv/bin/python -m social.serve --port 8001 &
first=$!
.venv/bin/python -m social.serve --port 8002 &
second=$!
trap 'kill $first $second 2>/dev/null' EXIT INT TERM
echo "serving on http://127.0.0.1:8001 and http://127.0.0.1:8002 (Redis $REDIS_URL, $DATABASE_URL)"
wait
