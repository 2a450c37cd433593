#!/usr/bin/env bash
# Try the scaled-out layout by hand: one daphne process per port in PORTS
# (default "8001 8002") sharing one Redis and one PostgreSQL database. Settings
# come from the environment, then .env (see .env.example), then the defaults
# below. Open one port in one browser and another in a second; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/python -m social.envfile)"
export DEBUG=1
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/5}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/social_dev}"
PORTS="${PORTS:-8001 8002}"
case "$DATABASE_URL" in
  postgres://* | postgresql://*)
    name="${DATABASE_URL##*/}"
    createdb -h 127.0.0.1 -U postgres "${name%%\?*}" 2>/dev/null || true ;;
esac
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT INT TERM
for port in $PORTS; do
  .venv/bin/python -m social.serve --port "$port" &
  pids+=("$!")
done
for port in $PORTS; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nothing listens on $port" >&2; exit 1; }
done
urls=""
for port in $PORTS; do urls="$urls http://127.0.0.1:$port/"; done
# Without user names and passwords.
where=$(echo "Redis $REDIS_URL, database $DATABASE_URL" | sed -E 's#//[^@/ ]*@#//#g')
echo "serving$urls ($where); Ctrl-C stops them"
wait
