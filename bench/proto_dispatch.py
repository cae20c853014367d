"""A prototype dispatch worker that keeps every sending thread busy, for comparison in B1 (not used by the app).

    .venv/bin/python bench/b1_fanout.py --only pg2 --dispatcher proto

`flask --app wsgi dispatch` works in lock-step: claim a batch, send all of it, wait for the slowest
send, record, claim again, so sends stop while the database works and while the batch's last
requests finish. This one pipelines the same steps with the same functions (claim_due, _prepare,
_record from notifications/dispatch.py): a claimer keeps up to 2 x concurrency messages queued, the
sending threads never wait for each other, and a recorder writes outcomes in one transaction every
100 ms. Same crash rule, same claim SQL, same outcome recording.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from backend.app import create_app
    from backend.db import get_database
    from backend.jobs import dispatch_config, rate_limiter
    from backend.logging_setup import configure_logging
    from backend.metrics import MESSAGES_SENT
    from backend.services import get_sender, get_vault
    from notifications.dispatch import DispatchReport, _prepare, _record, claim_due, expire_stale, recover_stuck
    from notifications.senders import SmsSendError
    from schedules.dbtypes import utcnow

    import logging

    app = create_app()
    configure_logging(app.config.get("LOG_FORMAT", "text"))
    log = logging.getLogger("bench.proto_dispatch")
    sessions, sender, vault = get_database(app).session, get_sender(app), get_vault(app)
    config, limiter = dispatch_config(app), rate_limiter(app)
    todo: queue.Queue = queue.Queue()
    done: queue.Queue = queue.Queue()
    stopping = threading.Event()
    pending = [0]      # claimed, not yet sent: what the claimer keeps topped up
    unrecorded = [0]   # claimed, outcome not yet written: what must drain before exit
    lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    def sender_loop():
        while True:
            job = todo.get()
            if job is None:
                return
            if not job.skip:
                if limiter is not None:
                    limiter.acquire()
                try:
                    job.outcome = sender.send(to=job.to, body=job.body, status_callback=config.status_callback_url)
                except SmsSendError as exc:
                    job.outcome = exc
            with lock:
                pending[0] -= 1
            done.put(job)

    def recorder_loop():
        while not (stopping.is_set() and unrecorded[0] == 0):
            time.sleep(0.1)
            jobs = []
            while True:
                try:
                    jobs.append(done.get_nowait())
                except queue.Empty:
                    break
            if jobs:
                report = DispatchReport()
                with sessions() as session:
                    _record(session, jobs, now=utcnow(), config=config, report=report)
                MESSAGES_SENT.inc(report.sent)
                with lock:
                    unrecorded[0] -= len(jobs)

    senders = [threading.Thread(target=sender_loop, daemon=True) for _ in range(config.concurrency)]
    recorder = threading.Thread(target=recorder_loop, daemon=True)
    for t in senders + [recorder]:
        t.start()
    with sessions() as session:
        recover_stuck(session, now=utcnow(), stale_after=config.sending_stale_after)
        expire_stale(session, now=utcnow())
    high_water = 2 * config.concurrency
    while not stopping.is_set():
        with lock:
            room = high_water - pending[0]
        if room < max(1, config.concurrency // 2):
            time.sleep(0.005)
            continue
        with sessions() as session:
            ids = claim_due(session, now=utcnow(), limit=min(config.batch_size, room), worker=config.worker_id)
        if not ids:
            log.info("job dispatch_outbox: claimed 0 (prototype)")
            stopping.wait(0.5)
            continue
        with sessions() as session:
            jobs = _prepare(session, ids, vault=vault, now=utcnow())
        with lock:
            pending[0] += len(jobs)
            unrecorded[0] += len(jobs)
        for job in jobs:
            todo.put(job)
    for _ in senders:
        todo.put(None)
    for t in senders:
        t.join(timeout=30)
    recorder.join(timeout=30)
    os._exit(0)


if __name__ == "__main__":
    main()
