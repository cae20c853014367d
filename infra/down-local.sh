#!/usr/bin/env bash
# Stop what infra/up-local.sh started (each by its recorded pid), then optionally drop the database.
#   infra/down-local.sh          # stop processes, keep database, env and logs
#   infra/down-local.sh --drop   # also drop the trial_local database, its two roles (trial_local_owner and
#                                # trial_local_app: DB_NAME's) and remove $TRIAL_LOCAL_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${TRIAL_LOCAL_DIR:-/tmp/trial-local}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
DB_NAME="${DB_NAME:-trial_local}"

# An exited process stays a zombie until init reaps it (here up to 2 s after the exit): count that as stopped.
running() { kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]; }

stop() {  # SIGTERM the process group that `setsid` made, wait up to 25 s, then SIGKILL it
  local file="$1" name pid
  name="$(basename "$file")"
  pid="$(cat "$file")"
  if running "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 250); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
      echo "$name did not stop in 25 s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

if [[ -d "$STATE/pids" ]]; then
  # Dispatchers first (they finish and record the sends in flight), then scheduler, web, and the stand-in last.
  for file in "$STATE/pids/dispatch@"* "$STATE/pids/scheduler" "$STATE/pids/web" "$STATE/pids/standin"; do
    [[ -f "$file" ]] && stop "$file"
  done
fi

if [[ "${1:-}" == "--drop" ]]; then
  "$PY" - "$PG_ADMIN_URL" "$DB_NAME" <<'EOF'
import sys
import psycopg
from psycopg import sql
admin_url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    print(f"dropped database {name}")
    # The roles up-local.sh made for it; with the database gone they own and hold nothing.
    for role in (f"{name}_app", f"{name}_owner"):
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        print(f"dropped role {role}")
EOF
  rm -rf "$STATE"
fi
echo "down"
