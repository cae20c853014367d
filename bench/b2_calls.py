"""B2's cost in counts the VM's noise cannot move: Python calls and SQL statements per inbound SMS, by kind.

    .venv/bin/python bench/b2_calls.py            # PostgreSQL; in process (Flask test client), no gunicorn

On a shared VM the same code's CPU time per request moves by up to 2x from one minute to the next; these two
counts do not, so they tell whether a change to the webhook made it cheaper. For each kind of reply ("1" with a
dose open, HELP, "1" again, a free-text symptom) a warm-up, then `--n` replies counted under cProfile (total
calls) and a statement counter on the engine; the store-only webhook (bench/store_only_app.py) alike.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats

import common
from b2_inbound import BODIES, inbound_setup
from sqlalchemy import event

KINDS = ("1", "HELP", "1 again", "symptom")  # BODIES in order: each participant's first, second, ... message
WARM = 50


def count(client, requests, engine) -> dict:
    """Calls and statements per request over `requests` (each one answered 200, or the run stops)."""
    statements = [0]

    def counted(*_):
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", counted)
    profile = cProfile.Profile()
    try:
        profile.enable()
        for signature, body in requests:
            response = client.post(
                "/sms/inbound",
                data=body,
                headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
                base_url="http://127.0.0.1:8000",
            )
            if response.status_code != 200:
                raise SystemExit(f"the webhook answered {response.status_code}: {response.get_data(as_text=True)}")
        profile.disable()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    n = len(requests)
    return {"calls": round(pstats.Stats(profile).total_calls / n), "statements": round(statements[0] / n, 1)}


def run(*, n: int) -> dict:
    """Count the real webhook by kind of reply, then the store-only webhook, on one fresh database."""
    participants = n + WARM
    with inbound_setup("b2calls", participants) as (app, env, work, sign):
        requests = sign("C", len(BODIES) * participants)
        client, engine = app.test_client(), app.extensions["database"].engine
        real = {}
        for k, kind in enumerate(KINDS):
            batch = requests[k * participants : (k + 1) * participants]
            count(client, batch[:WARM], engine)
            real[kind] = count(client, batch[WARM:], engine)
        os.environ.update(env)  # store_only_app builds the real app from the environment, as gunicorn would
        import store_only_app

        store_engine = store_only_app.engine
        store_client = store_only_app.app.test_client()
        store_requests = sign("CS", participants)
        count(store_client, store_requests[:WARM], store_engine)
        store = count(store_client, store_requests[WARM:], store_engine)
        store_engine.dispose()
    return {"n": n, "real": real, "store_only": store}


def show(r: dict) -> None:
    """One line per kind, with its share of the store-only webhook's calls."""
    store = r["store_only"]
    print(f"-- store-only webhook    : {store['calls']:6d} calls, {store['statements']:4.1f} statements a request")
    for kind, c in r["real"].items():
        print(
            f"-- real webhook, {kind:8s}: {c['calls']:6d} calls, {c['statements']:4.1f} statements a request"
            f" -> store-only / real calls {store['calls'] / c['calls']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=250, help="replies counted per kind (after a warm-up of 50)")
    args = parser.parse_args()
    common.banner("B2 calls: Python calls and SQL statements per inbound SMS (real webhook by kind, store-only)")
    result = run(n=args.n)
    show(result)
    common.record("B2-calls", result)


if __name__ == "__main__":
    main()
