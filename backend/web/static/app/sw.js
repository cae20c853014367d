// The app's service worker (scope /app/): keeps the app's own files so it opens without a connection.
// Only the shell is kept; API answers never pass through here (the app keeps what it needs in IndexedDB, and
// personal data stays out of the shared Cache Storage). Network first, so an update shows on the next open.

const CACHE = "trial-companion-shell-v1";
const SHELL = [
  "/app/",
  "/app/app.css",
  "/app/manifest.webmanifest",
  "/app/icon.svg",
  "/app/icon-192.png",
  "/app/icon-512.png",
  "/app/js/api.js",
  "/app/js/app.js",
  "/app/js/bodymap.js",
  "/app/js/dom.js",
  "/app/js/i18n.js",
  "/app/js/outbox.js",
  "/app/js/screens.js",
  "/app/js/store.js",
  "/app/js/vasline.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith("/app/")) {
    return; // the API and everything else: straight to the network
  }
  const key = url.pathname === "/app/index.html" ? "/app/" : url.pathname;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key).then((kept) => kept || Response.error())),
  );
});
