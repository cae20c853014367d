#!/usr/bin/env bash
# End-to-end check of the scale-out shape, in real time: bring up an isolated copy with up-local.sh
# (its own directory, database, ports and Redis database), run infra/e2e_local.py against it, and
# always tear it down with down-local.sh --drop.
#
#   infra/e2e-local.sh          # exit 0 and "PASS" when every step holds; otherwise names the failed step
#   E2E_KEEP=1 infra/e2e-local.sh   # leave the copy running afterwards (the script prints how to stop it)
#
# Honours PG_ADMIN_URL and PYTHON like up-local.sh; E2E_REDIS_URL (default Redis database 14, so the
# send-rate window is not shared with a trial-local on database 0) and E2E_SEND_RATE (default 200/s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
started=$SECONDS

suffix="$("$PY" -c 'import secrets; print(secrets.token_hex(4))')"
read -r web_port standin_port < <("$PY" - <<'EOF'
import socket
# Bind both at once so the two ports differ; the small window before up-local.sh binds them is accepted.
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

export TRIAL_LOCAL_DIR="/tmp/trial-e2e-$suffix"
export DB_NAME="trial_e2e_$suffix"
export WEB_PORT="$web_port" STANDIN_PORT="$standin_port"
export REDIS_URL="${E2E_REDIS_URL:-redis://127.0.0.1:6379/14}"
export SEND_RATE_PER_SECOND="${E2E_SEND_RATE:-200}"
export DISPATCHERS=2
# A SIGKILLed dispatcher's rows are taken back after 5 s instead of 5 minutes (the crash step waits for it).
export SENDING_STALE_AFTER_SECONDS=5
export PYTHON="$PY"

teardown() {
  local rc=$?
  if [[ $rc -ne 0 && -d "$TRIAL_LOCAL_DIR/logs" ]]; then
    for log in "$TRIAL_LOCAL_DIR"/logs/*.log; do
      echo "--- last lines of $(basename "$log") ---" >&2
      tail -n 8 "$log" >&2 || true
    done
  fi
  if [[ "${E2E_KEEP:-}" == 1 ]]; then
    echo "E2E_KEEP=1: left running; stop with: TRIAL_LOCAL_DIR=$TRIAL_LOCAL_DIR DB_NAME=$DB_NAME infra/down-local.sh --drop"
  else
    infra/down-local.sh --drop > "/tmp/trial-e2e-$suffix.down.log" 2>&1 \
      || { echo "teardown failed; see /tmp/trial-e2e-$suffix.down.log" >&2; rc=1; }
    rm -f "/tmp/trial-e2e-$suffix.down.log"
  fi
  echo "e2e-local: $([[ $rc -eq 0 ]] && echo PASS || echo FAIL) in $((SECONDS - started)) s (up, scenario and teardown)"
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

echo "e2e-local: isolated copy in $TRIAL_LOCAL_DIR, database $DB_NAME, web :$WEB_PORT, stand-in :$STANDIN_PORT, $REDIS_URL"
if ! infra/up-local.sh > "$TRIAL_LOCAL_DIR.up.log" 2>&1; then
  cat "$TRIAL_LOCAL_DIR.up.log" >&2
  rm -f "$TRIAL_LOCAL_DIR.up.log"
  echo "FAILED step: bring-up: infra/up-local.sh did not bring the stack to ready (output above)" >&2
  exit 1
fi
grep -E '^(ready|started)' "$TRIAL_LOCAL_DIR.up.log" || true
rm -f "$TRIAL_LOCAL_DIR.up.log"
echo "e2e-local: up in $((SECONDS - started)) s"

"$PY" infra/e2e_local.py --state "$TRIAL_LOCAL_DIR"
