#!/usr/bin/env bash
# Bring up the scale-out shape on this machine: PostgreSQL + Redis (already running), the web app under
# gunicorn (2 workers), the one scheduler, two dispatch workers (both restarted when they exit, by
# infra/supervise.sh), and the Twilio stand-in they send to.
#
#   infra/up-local.sh            # start (idempotent: says so and exits if already up)
#   infra/down-local.sh          # stop everything it started (--drop also drops the database)
#
# Everything it writes lives in $TRIAL_LOCAL_DIR (default /tmp/trial-local): env, pids, logs, metrics.
# To run CLI commands against this deployment:  set -a; . /tmp/trial-local/env; set +a; flask --app wsgi ...
# (first `staff create --role admin --reason ...`, then every change `--as` that admin: README, Operator CLI)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${TRIAL_LOCAL_DIR:-/tmp/trial-local}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
DB_NAME="${DB_NAME:-trial_local}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
WEB_PORT="${WEB_PORT:-8000}"
STANDIN_PORT="${STANDIN_PORT:-8099}"
DISPATCHERS="${DISPATCHERS:-2}"

mkdir -p "$STATE/pids" "$STATE/logs"
chmod 700 "$STATE"

alive() { [[ -f "$STATE/pids/$1" ]] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }
if alive web; then
  echo "already up (web pid $(cat "$STATE/pids/web")); infra/down-local.sh stops it"
  exit 0
fi

# --- preconditions: the two services this shape depends on -------------------------------------------
# Two PostgreSQL roles, named after the database so that copies on a shared server never meet (README, Database
# roles): the owner, which owns the schema and runs the migrations, and the runtime role every process uses,
# which may only add to the audit trail. Their passwords are generated once and kept in $STATE.
OWNER_ROLE="${DB_NAME}_owner"
RUNTIME_ROLE="${DB_NAME}_app"
if [[ ! -f "$STATE/db-roles.env" ]]; then
  (umask 077; "$PY" -c 'import secrets; [print(f"{n}={secrets.token_urlsafe(24)}") for n in ("OWNER_PASSWORD", "RUNTIME_PASSWORD")]' \
    > "$STATE/db-roles.env")
fi
. "$STATE/db-roles.env"
PG_HOST_PORT="$(OWNER_PASSWORD="$OWNER_PASSWORD" RUNTIME_PASSWORD="$RUNTIME_PASSWORD" \
  "$PY" - "$PG_ADMIN_URL" "$DB_NAME" "$OWNER_ROLE" "$RUNTIME_ROLE" <<'EOF'
import os
import sys
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
admin_url, name, owner, runtime = sys.argv[1:5]
passwords = {owner: os.environ["OWNER_PASSWORD"], runtime: os.environ["RUNTIME_PASSWORD"]}
with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
    for role in (owner, runtime):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        # NOSUPERUSER and the rest are the defaults; said anyway, so an existing role is put back to them.
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role), sql.Literal(passwords[role])
            )
        )
        if not exists:
            print(f"created role {role}", file=sys.stderr)
    row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if row is None:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
        print(f"created database {name}, owned by {owner}", file=sys.stderr)
    elif row[0] != owner:
        sys.exit(
            f"database {name} belongs to {row[0]}, not {owner}: it is from before the two roles; "
            "drop it with infra/down-local.sh --drop (or choose another DB_NAME) and start again"
        )
    else:
        print(f"database {name} exists", file=sys.stderr)
info = conninfo_to_dict(admin_url)
print(f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}")
EOF
)"
"$PY" - "$REDIS_URL" <<'EOF'
import sys
import redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()
print(f"redis answers at {sys.argv[1]}")
EOF

# --- configuration: production mode, secrets generated once and kept in $STATE ----------------------
if [[ ! -f "$STATE/secrets.env" ]]; then
  (umask 077; "$PY" - > "$STATE/secrets.env" <<'EOF'
import base64, secrets
print(f"SECRET_KEY={secrets.token_urlsafe(32)}")
print(f"PHONE_ENCRYPTION_KEY={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}")
print(f"PHONE_HASH_KEY={secrets.token_urlsafe(32)}")
print(f"TWILIO_AUTH_TOKEN={secrets.token_hex(16)}")
EOF
  )
fi
# The owner's URL stays out of $STATE/env, which every process loads: only the migrations below read it.
(umask 077; echo "MIGRATION_DATABASE_URL=postgresql://$OWNER_ROLE:$OWNER_PASSWORD@$PG_HOST_PORT/$DB_NAME" \
  > "$STATE/migrate.env")
cat > "$STATE/env" <<EOF
APP_ENV=production
INSTANCE_DIR=$STATE/instance
# The runtime role: reads and writes the app's tables, may only add to the audit trail.
DATABASE_URL=postgresql://$RUNTIME_ROLE:$RUNTIME_PASSWORD@$PG_HOST_PORT/$DB_NAME
RATELIMIT_STORAGE_URI=$REDIS_URL
PROMETHEUS_MULTIPROC_DIR=$STATE/metrics
LOG_FORMAT=json
PUBLIC_BASE_URL=http://127.0.0.1:$WEB_PORT
# No reverse proxy in front locally; behind nginx this is 1 (infra/nginx.conf).
PROXY_FIX_HOPS=0
SESSION_COOKIE_SECURE=false
SMS_BACKEND=twilio
TWILIO_ACCOUNT_SID=AC00000000000000000000000000local
TWILIO_FROM_NUMBER=+15005550006
TWILIO_API_BASE_URL=http://127.0.0.1:$STANDIN_PORT
SEND_RATE_PER_SECOND=${SEND_RATE_PER_SECOND:-50}
DISPATCH_CONCURRENCY=${DISPATCH_CONCURRENCY:-8}
# How long a row may sit in 'sending' before a dispatcher is taken for crashed (infra/e2e-local.sh shortens it).
SENDING_STALE_AFTER_SECONDS=${SENDING_STALE_AFTER_SECONDS:-300}
GUNICORN_WORKERS=2
GUNICORN_BIND=127.0.0.1:$WEB_PORT
EOF
cat "$STATE/secrets.env" >> "$STATE/env"
chmod 600 "$STATE/env"
set -a; . "$STATE/env"; set +a
export PYTHONUNBUFFERED=1

# Metric files of a previous run are stale: empty the directory only while nothing writes to it (now).
rm -rf "$PROMETHEUS_MULTIPROC_DIR"; mkdir -p "$PROMETHEUS_MULTIPROC_DIR" "$INSTANCE_DIR"

# --- migrations first, exactly as a deploy does: as the owner, which then grants the runtime role ---------
(set -a; . "$STATE/migrate.env"; set +a; "$PY" -m flask --app wsgi db upgrade)

start() {  # name, command...: detached, own process group, output to logs/<name>.log
  local name="$1"; shift
  setsid "$@" >> "$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/$name"
  echo "started $name (pid $!)"
}

# The scheduler and the dispatchers exit non-zero on a fatal condition (lock lost, database gone) and count on
# being restarted, as systemd's Restart=always does: infra/supervise.sh restarts them with a short backoff and
# logs each restart. The recorded pid (= process group) is the supervisor's; down-local.sh stops both.
start standin "$PY" -m notifications.twilio_standin --port "$STANDIN_PORT"
start web "$PY" -m gunicorn -c infra/gunicorn.conf.py wsgi:app
start scheduler infra/supervise.sh scheduler "$PY" -m flask --app wsgi scheduler --no-dispatch
for i in $(seq 1 "$DISPATCHERS"); do
  start "dispatch@$i" infra/supervise.sh "dispatch@$i" "$PY" -m flask --app wsgi dispatch
done

# --- wait until ready -------------------------------------------------------------------------------------
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$WEB_PORT/readyz" > /dev/null 2>&1 && curl -fsS "http://127.0.0.1:$STANDIN_PORT/_standin/stats" > /dev/null 2>&1; then
    echo "ready: http://127.0.0.1:$WEB_PORT/readyz -> $(curl -fsS "http://127.0.0.1:$WEB_PORT/readyz")"
    echo "metrics: http://127.0.0.1:$WEB_PORT/metrics   stand-in: http://127.0.0.1:$STANDIN_PORT/_standin/messages"
    echo "logs: $STATE/logs/   CLI: set -a; . $STATE/env; set +a; $PY -m flask --app wsgi <command>"
    exit 0
  fi
  sleep 0.5
done
echo "not ready after 30 s; see $STATE/logs/web.log" >&2
tail -n 20 "$STATE/logs/web.log" >&2 || true
exit 1
