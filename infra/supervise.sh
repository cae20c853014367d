#!/usr/bin/env bash
# Keep one command running: restart it whenever it exits, after a short backoff; stop it on SIGTERM or SIGINT.
#
#   infra/supervise.sh NAME COMMAND [ARG...]          # as up-local.sh runs the scheduler and the dispatchers
#   . infra/supervise.sh; supervise NAME COMMAND...   # the same loop as a function
#
# The backoff starts at SUPERVISE_MIN_DELAY (1 s), doubles up to SUPERVISE_MAX_DELAY (30 s) while the command
# keeps failing, and starts over once a run lasted SUPERVISE_HEALTHY_AFTER (60 s). Every restart is logged on
# stderr with the exit status. SIGTERM/SIGINT is passed to the command, whose own exit status then ends the loop
# (a whole process group signalled at once, as down-local.sh does, works too: the command sees it twice).
# Any exit, 0 included, counts as unexpected: only this loop's own signal means "stop" (systemd's Restart=always).

supervise() {
  local name="$1"; shift
  local min="${SUPERVISE_MIN_DELAY:-1}" max="${SUPERVISE_MAX_DELAY:-30}" healthy="${SUPERVISE_HEALTHY_AFTER:-60}"
  local delay="$min" child="" sleeper="" stopping="" status=0 started restarts=0
  trap 'stopping=1; [[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null; [[ -n "$sleeper" ]] && kill "$sleeper" 2>/dev/null' TERM INT
  while [[ -z "$stopping" ]]; do
    started=$SECONDS
    "$@" &
    child=$!
    [[ -n "$stopping" ]] && kill -TERM "$child" 2>/dev/null  # the signal came while it was being started
    # A trapped signal ends `wait` early (status > 128): wait again until the child itself has exited.
    while wait "$child"; status=$?; kill -0 "$child" 2>/dev/null; do :; done
    child=""
    [[ -n "$stopping" ]] && break
    (( SECONDS - started >= healthy )) && delay="$min"
    restarts=$((restarts + 1))
    echo "$(date -u +%FT%TZ) supervise: $name exited with status $status after $((SECONDS - started)) s;" \
      "restart $restarts in $delay s" >&2
    sleep "$delay" &
    sleeper=$!
    wait "$sleeper" 2>/dev/null || true
    sleeper=""
    delay=$(( delay * 2 < max ? delay * 2 : max ))
  done
  trap - TERM INT
  echo "$(date -u +%FT%TZ) supervise: $name stopped (status $status)" >&2
  return "$status"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -uo pipefail
  if (( $# < 2 )); then
    echo "usage: $0 NAME COMMAND [ARG...]" >&2
    exit 2
  fi
  supervise "$@"
  exit $?
fi
