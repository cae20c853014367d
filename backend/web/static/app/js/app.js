// The participant app's shell: start-up, the screens' router (#today, #calendar, ...), the connection and
// "waiting to send" status, the full-screen "call your site now", and the service worker for offline use.

import { Offline, Revoked, hasSession, request } from "./api.js";
import { h, notice } from "./dom.js";
import { language, setLanguage, t } from "./i18n.js";
import { flush, onOutboxChange, pending } from "./outbox.js";
import { SCREENS, activationScreen } from "./screens.js";
import { kv } from "./store.js";

const NAV = ["today", "calendar", "vas", "ae", "messages", "settings"];

const app = {
  me: null,
  revoked: false,
  online: navigator.onLine,

  // A GET of the API, kept on the phone so the screen can be drawn offline from the last answer.
  async load(path) {
    try {
      const data = await request("GET", path);
      await kv.set(`cache:${path}`, data);
      return data;
    } catch (error) {
      if (error instanceof Offline) {
        const kept = await kv.get(`cache:${path}`);
        if (kept !== undefined) return kept;
      }
      throw error;
    }
  },

  go(screen) {
    if (location.hash !== `#${screen}`) location.hash = `#${screen}`;
    else render();
  },

  async setMe(me) {
    app.me = me;
    setLanguage(me.language);
    await kv.set("cache:/api/v1/me", me);
  },

  signedOut(revoked) {
    app.me = null;
    app.revoked = revoked;
    location.hash = "#activate";
    render();
  },

  showCall() {
    const me = app.me || {};
    const dialog = document.getElementById("call-screen");
    dialog.replaceChildren(
      h("h2", { id: "call-title" }, t("call_title")),
      h("p", {}, t("call_body")),
      me.site_phone ? h("a", { class: "call-link", href: `tel:${me.site_phone}` }, t("call_site", { phone: me.site_phone })) : null,
      me.emergency_number
        ? h("a", { class: "call-link call-emergency", href: `tel:${me.emergency_number}` }, t("call_emergency", { number: me.emergency_number }))
        : null,
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, t("call_close")),
    );
    if (!dialog.open) dialog.showModal();
  },
};

async function updateStatus() {
  const status = document.getElementById("status");
  const waiting = (await pending()).length;
  status.replaceChildren(
    app.online ? null : h("p", { class: "offline" }, t("offline_banner")),
    waiting ? h("p", { class: "waiting" }, t("pending_count", { n: waiting })) : null,
  );
  status.hidden = app.online && !waiting;
}

function drawNav(active) {
  const nav = document.getElementById("nav");
  nav.setAttribute("aria-label", t("nav_label"));
  nav.hidden = active === "activate";
  nav.replaceChildren(
    h(
      "ul",
      {},
      ...NAV.map((name) =>
        h(
          "li",
          {},
          h("a", { href: `#${name}`, "aria-current": name === active ? "page" : undefined }, t(`nav_${name}`)),
        ),
      ),
    ),
  );
}

let drawing = 0;

async function render() {
  const run = ++drawing;
  const main = document.getElementById("main");
  document.title = t("app_title");
  document.getElementById("app-name").textContent = t("app_title");
  const hash = location.hash.replace(/^#/, "");
  const code = hash.startsWith("code=") ? decodeURIComponent(hash.slice(5)) : "";
  let screen = hash.split("=")[0] || "today";
  if (code || !(await hasSession())) screen = "activate";
  if (!SCREENS[screen] && screen !== "activate") screen = "today";
  drawNav(screen);
  await updateStatus();
  delete main.dataset.screen;
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("p", { class: "loading" }, t("loading")));
  let content;
  try {
    if (screen === "activate") {
      content = await activationScreen(app, { code, revoked: app.revoked });
    } else {
      if (!app.me) await app.setMe(await app.load("/api/v1/me"));
      content = await SCREENS[screen](app);
    }
  } catch (error) {
    if (error instanceof Revoked) return app.signedOut(true);
    content = h("section", {}, h("h1", {}, t(`nav_${screen}`)), notice(t("error_generic", { reason: error.message }), "error"));
  }
  if (run !== drawing) return; // a later navigation drew over this one
  main.replaceChildren(content);
  main.dataset.screen = screen; // drawn: tests and assistive tech can tell the screen is complete
  main.removeAttribute("aria-busy");
  const heading = main.querySelector("h1");
  if (heading && document.activeElement === document.body) heading.focus();
}

onOutboxChange(async ({ results }) => {
  await updateStatus();
  if (results && results.get("stopped") instanceof Revoked) app.signedOut(true);
});

window.addEventListener("hashchange", render);
window.addEventListener("online", async () => {
  app.online = true;
  await updateStatus();
  await flush();
  render();
});
window.addEventListener("offline", () => {
  app.online = false;
  updateStatus();
});

async function start() {
  const kept = await kv.get("cache:/api/v1/me");
  if (kept) setLanguage(kept.language);
  else setLanguage(language());
  await render();
  // Reports left from an earlier visit go now (they carry the Idempotency-Key they were made with).
  if (await hasSession()) flush();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }
}

window.trialCompanion = app; // for tests and the curious: the app's state, never a token
start();
