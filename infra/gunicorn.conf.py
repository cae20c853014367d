"""gunicorn settings shared by the embedded default and production (override with GUNICORN_* env).

    gunicorn -c infra/gunicorn.conf.py wsgi:app

Metrics: with several workers, each has its own memory, so /metrics would answer for whichever
worker took the scrape. prometheus_client's multi-process mode fixes that: every process writes
to PROMETHEUS_MULTIPROC_DIR and /metrics merges the files. Deployments set that directory for web,
scheduler and dispatchers alike (infra/README.md); if it is unset, this file gives the web workers
a private one, so at least the workers agree with each other.
"""

import os
import shutil
import sys
import tempfile

# The config file is read before gunicorn puts the working directory on sys.path.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from backend.runtime.logging_setup import gunicorn_logconfig  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
# Recycle workers now and then so a slow leak cannot grow without bound; jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max(0, max_requests // 10)
# Heartbeat files on tmpfs: a container's overlay filesystem can stall them and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Access lines come from the app (request id, path only); gunicorn's would repeat them with query strings.
accesslog = None
errorlog = "-"
logconfig_dict = gunicorn_logconfig(os.environ.get("LOG_FORMAT", "text"))
# Only the reverse proxy may tell us the scheme (X-Forwarded-Proto); it must be the same host(s) that
# PROXY_FIX_HOPS counts in the app. Default: nginx on this machine.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket defaults to one path per user: a second gunicorn on the machine would
# take it over. Off unless asked for with a path of its own.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

_OWN_METRICS_DIR = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = tempfile.mkdtemp(prefix="trial-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN_METRICS_DIR


def child_exit(server, worker):
    """Drop the live gauges of a worker that exited (counters and histograms keep counting)."""
    from backend.runtime.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this file created for itself (never a configured one)."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
