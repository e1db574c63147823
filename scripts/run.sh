#!/usr/bin/env bash
# `make run`: local defaults, a demo tenant/app/user (idempotent), a worker and the API.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATE=.analytics
mkdir -p "$STATE"

if [ -z "${ANALYTICS_SECRET_KEY:-}" ]; then
  [ -s "$STATE/secret_key" ] || "$BIN/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' > "$STATE/secret_key"
  export ANALYTICS_SECRET_KEY="$(cat "$STATE/secret_key")"
fi

if [ -z "${ANALYTICS_DATABASE_URL:-}" ]; then
  # Local default: an ordinary role `analytics` (CREATEROLE) owning database `analytics`.
  # Creating them once needs the local superuser; the service never uses it.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'analytics'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE ROLE analytics LOGIN CREATEROLE"
  fi
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'analytics'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE analytics OWNER analytics"
  fi
fi

"$BIN/analytics" db upgrade
"$BIN/analytics" tenant create demo --name "Demo tenant"
TOKEN="$("$BIN/python" scripts/demo.py | tail -n 1)"

PORT="${PORT:-8000}"
"$BIN/analytics" worker --concurrency 2 > "$STATE/worker.log" 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT

cat <<MSG

Analytics API on http://127.0.0.1:$PORT  (worker log: $STATE/worker.log)
Demo tenant "demo", app "dashboard", user "demo". Token (also in $STATE/demo_token):

  export TOKEN=$TOKEN

Try:
  curl -s http://127.0.0.1:$PORT/api/apps/dashboard/analytics/queries/ -H "Authorization: Bearer \$TOKEN"
  curl -s -X POST http://127.0.0.1:$PORT/api/apps/dashboard/analytics/queries/orders-by-status/execute/ \\
       -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"params": {"status": "paid"}}'
  curl -s http://127.0.0.1:$PORT/api/apps/dashboard/secrets/types/ -H "Authorization: Bearer \$TOKEN"

API docs: http://127.0.0.1:$PORT/api/docs
MSG

"$BIN/analytics" serve --port "$PORT"
