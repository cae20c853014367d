// Reports made on the phone go through here: kept in IndexedDB with their Idempotency-Key before the first try,
// sent in the order made, and removed only once the server has answered. A retry after a lost answer sends the
// same key, so the server records each report once. Several open tabs take turns (Web Locks).

import { ApiError, newKey, Offline, request, Revoked } from "./api.js";
import { outbox } from "./store.js";

const listeners = new Set();
let queue = Promise.resolve();

export function onOutboxChange(listener) {
  listeners.add(listener);
}

function changed(event) {
  for (const listener of listeners) listener(event);
}

export function pending() {
  return outbox.all();
}

async function drain() {
  const results = new Map();
  for (const item of await outbox.all()) {
    try {
      const data = await request(item.method, item.path, { body: item.body, key: item.key });
      await outbox.remove(item.key);
      results.set(item.key, { status: "sent", data, item });
    } catch (error) {
      if (error instanceof Offline || error instanceof Revoked) {
        results.set("stopped", error);
        break; // kept, with everything after it, for the next time
      }
      if (error instanceof ApiError && (error.status >= 500 || error.status === 429)) break;
      // Refused for good (e.g. the dose was already reported by SMS): say so once, do not retry.
      await outbox.remove(item.key);
      results.set(item.key, { status: "refused", error: error.message, item });
    }
  }
  changed({ results });
  return results;
}

// Send everything waiting; resolves with what happened to each report.
export function flush() {
  const run = () => (navigator.locks ? navigator.locks.request("trial-companion-outbox", drain) : drain());
  queue = queue.then(run, run);
  return queue;
}

// Keep a report and try to send it now: {status: "sent", data} | {status: "pending"} | {status: "refused", error}.
export async function submit(method, path, body, meta = {}) {
  const item = { key: newKey(), method, path, body, meta, created: Date.now() };
  await outbox.put(item);
  changed({ results: new Map() });
  const results = await flush();
  return results.get(item.key) || { status: "pending", item };
}
