// The app's storage on the phone: IndexedDB, which survives closing the app. "kv" keeps the refresh token and
// the last answers of the API (shown offline); "outbox" keeps reports made offline, each with its Idempotency-Key.

const DB_NAME = "trial-companion";
const DB_VERSION = 1;
let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv");
        if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "key" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

async function run(storeName, mode, action) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, mode);
    const result = action(tx.objectStore(storeName));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const kv = {
  get: (key) => run("kv", "readonly", (s) => s.get(key)),
  set: (key, value) => run("kv", "readwrite", (s) => s.put(value, key)),
  remove: (key) => run("kv", "readwrite", (s) => s.delete(key)),
  clear: () => run("kv", "readwrite", (s) => s.clear()),
};

export const outbox = {
  all: async () => {
    const rows = (await run("outbox", "readonly", (s) => s.getAll())) || [];
    return rows.sort((a, b) => a.created - b.created);
  },
  put: (item) => run("outbox", "readwrite", (s) => s.put(item)),
  remove: (key) => run("outbox", "readwrite", (s) => s.delete(key)),
  clear: () => run("outbox", "readwrite", (s) => s.clear()),
};
