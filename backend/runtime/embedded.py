"""serve-embedded's two children, gunicorn and the scheduler: started together, stopped together, never left behind."""

from __future__ import annotations

import errno
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable

log = logging.getLogger("backend.runtime.embedded")
# SIGTERM to each child first (gunicorn lets requests finish, the scheduler its running jobs), SIGKILL after this:
# everything is gone within 10 s of serve-embedded's own SIGTERM.
STOP_GRACE_SECONDS = 8.0


def listen_problem(host: str, port: int) -> str | None:
    """Why nothing can listen on host:port now, as a sentence (None when it is free)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # create_server sets SO_REUSEADDR, as gunicorn does: a port left in TIME_WAIT counts as free.
        socket.create_server(address, family=family).close()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is taken by another process; stop it or choose another with --port"
        return f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --host or --port"
    return None


def serve(*, host: str, port: int, env: dict[str, str], echo: Callable[[str], None]) -> str | None:
    """Run gunicorn and the scheduler until SIGTERM or SIGINT (returns None) or until either stops by itself
    (returns why, as a sentence); both are stopped, and their process groups emptied, before it returns."""
    children: dict[str, subprocess.Popen] = {}
    with _ReadySocket() as ready, _StopRequest() as stop:
        try:
            scheduler_env = {k: v for k, v in env.items() if k != "NOTIFY_SOCKET"}
            children["scheduler"] = _start([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"], scheduler_env)
            children["web"] = _start(
                [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py", "--bind", f"{host}:{port}"]
                + ["wsgi:app"],
                {**env, "NOTIFY_SOCKET": ready.address},
            )
            listening = False
            while not stop.event.wait(0.2):
                if not listening and ready.received():
                    listening = True
                    echo(f"Trial Companion on http://{host}:{port}/  (API docs: /api/docs, nurse pages: /)")
                for name, proc in children.items():
                    if _exited(proc):
                        return _why(name, _exit_status(proc), listening=listening, host=host, port=port)
            echo(f"stopping on {stop.signal}: the web server and the scheduler")
            return None
        finally:
            _stop(list(children.values()))


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    # A process group per child: the final SIGKILL sweep reaches gunicorn's workers too, and only ours.
    return subprocess.Popen(argv, env=env, process_group=0)


def _exited(proc: subprocess.Popen) -> bool:
    """True once the child has exited; it stays a zombie, so its pid (= its group id) cannot be reused until reaped."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _exit_status(proc: subprocess.Popen) -> int:
    """The exit status of an exited child, without reaping it (negative: the signal that killed it)."""
    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _stop(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each running child, give them `grace` seconds, then SIGKILL whatever is left in their groups."""
    for proc in procs:
        if not _exited(proc):
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not all(_exited(proc) for proc in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in procs:
        if not _exited(proc):
            log.warning("pid %s did not stop within %g s of SIGTERM; killing it", proc.pid, grace)
        try:
            # Safe while the leader is unreaped (its pid is still taken); also ends workers a dead master left.
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in procs:
        proc.wait()


def _why(name: str, status: int, *, listening: bool, host: str, port: int) -> str:
    ended = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
    if name == "web" and not listening:
        return (
            f"the web server could not start on {host}:{port} (gunicorn {ended}; its own message is above, "
            "e.g. the port was taken meanwhile)"
        )
    return f"the {'web server (gunicorn)' if name == 'web' else 'scheduler'} {ended} unexpectedly"


class _StopRequest:
    """SIGTERM and SIGINT set an event instead of ending the process before it could stop its children."""

    def __init__(self):
        self.event = threading.Event()
        self.signal = ""

    def __enter__(self) -> _StopRequest:
        self._previous = {s: signal.signal(s, self._received) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _received(self, signum, _frame) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *_exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _ReadySocket:
    """A private sd_notify socket: gunicorn sends READY=1 on it once it listens (and never if it cannot bind)."""

    def __init__(self):
        self.address = f"@trial-serve-embedded-{os.getpid()}-{secrets.token_hex(4)}"  # abstract: no file to remove
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def __enter__(self) -> _ReadySocket:
        self._sock.bind("\0" + self.address[1:])
        self._sock.setblocking(False)
        return self

    def received(self) -> bool:
        """True when READY=1 has arrived since the last call."""
        try:
            while True:
                if b"READY=1" in self._sock.recv(4096):
                    return True
        except BlockingIOError:
            return False

    def __exit__(self, *_exc) -> None:
        self._sock.close()
