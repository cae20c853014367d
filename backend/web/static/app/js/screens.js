// The screens: activation, today, calendar, VAS, adverse event, messages, settings. Each returns its section;
// reports go through the outbox (kept on the phone first), settings need a connection.

import { activate, ApiError, newKey, Offline, request, signOut } from "./api.js";
import { bodyMap } from "./bodymap.js";
import { h, notice } from "./dom.js";
import { formatDate, formatDateTime, formatTime, LANGUAGES, language, setLanguage, t } from "./i18n.js";
import { flush, pending, submit } from "./outbox.js";
import { kv, outbox } from "./store.js";
import { vasLine } from "./vasline.js";

function section(titleKey, ...children) {
  return h("section", { class: "screen" }, h("h1", { tabindex: "-1" }, t(titleKey)), ...children);
}

function stateLabel(state) {
  return t(`state_${state}`);
}

// --- activation --------------------------------------------------------------------------------------------
export async function activationScreen(app, { code, revoked }) {
  const input = h("input", {
    id: "code",
    name: "code",
    autocomplete: "one-time-code",
    autocapitalize: "characters",
    spellcheck: "false",
    "aria-describedby": "code-hint",
    value: code,
    required: true,
  });
  const result = h("div", { class: "result" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        result.replaceChildren();
        try {
          await activate(input.value.trim(), `${navigator.platform || "phone"} app`);
          app.revoked = false;
          await app.setMe(await request("GET", "/api/v1/me"));
          // Reports kept from someone else's session on this phone are never sent as this participant.
          for (const item of await pending()) {
            if (item.meta.who !== app.me.study_code) await outbox.remove(item.key);
          }
          history.replaceState(null, "", "/app/#today");
          app.go("today");
        } catch (error) {
          const text = error instanceof Offline ? t("activate_offline") : t("activate_failed", { reason: error.message });
          result.replaceChildren(notice(text, "error"));
        }
      },
    },
    h("label", { for: "code" }, t("activate_code")),
    h("p", { id: "code-hint", class: "hint" }, t("activate_code_hint")),
    input,
    h("button", { type: "submit" }, t("activate_button")),
  );
  return section(
    "activate_title",
    revoked ? notice(t("revoked"), "error") : null,
    h("p", {}, t("activate_intro")),
    form,
    result,
  );
}

// --- today -------------------------------------------------------------------------------------------------
function openDose(doses, now) {
  return doses.find(
    (d) => new Date(d.window_opens_at) <= now && now < new Date(d.window_closes_at) && d.state !== "cancelled",
  );
}

async function waitingReports(kind) {
  return (await pending()).filter((item) => item.meta.kind === kind);
}

async function today(app) {
  const zone = app.me.time_zone;
  const flash = await flashNotice();
  const doses = await app.load("/api/v1/me/doses");
  if (!doses.length) return section("today_title", flash, h("p", {}, t("today_no_doses")));
  const now = new Date();
  const dose = openDose(doses, now);
  if (!dose) {
    const next = doses.find((d) => new Date(d.window_opens_at) > now && d.state === "scheduled");
    return section(
      "today_title",
    flash,
      h("p", {}, next ? t("today_next", { date: formatDate(next.local_date), time: formatTime(next.due_at, zone) }) : t("today_none_left")),
    );
  }
  const sites = await app.load("/api/v1/me/injection-sites");
  const labelOf = (code) => (sites.sites.find((s) => s.site === code) || {}).label || code;
  const header = [
    h("h2", {}, t("today_open", { seq: dose.seq, date: formatDate(dose.local_date) })),
    h("p", {}, t("today_window", { opens: formatDateTime(dose.window_opens_at, zone), closes: formatDateTime(dose.window_closes_at, zone) })),
  ];
  const waiting = (await waitingReports("dose")).find((item) => item.meta.seq === dose.seq);
  if (waiting) {
    return section(
      "today_title",
    flash,
      ...header,
      h("p", { class: "pending-item" }, h("strong", {}, t("waiting_to_send")), ": ", waiting.body.taken ? t("state_taken") : t("state_not_taken"), waiting.body.injection_site ? ` — ${labelOf(waiting.body.injection_site)}` : ""),
    );
  }
  if (dose.state !== "scheduled" && dose.state !== "missed") {
    return section(
      "today_title",
    flash,
      ...header,
      h("p", { class: "dose-state" }, stateLabel(dose.state)),
      dose.taken_at ? h("p", {}, t("today_done_taken", { time: formatDateTime(dose.taken_at, zone) })) : null,
      dose.injection_site ? h("p", {}, t("today_done_site", { site: labelOf(dose.injection_site) })) : null,
    );
  }
  const picker = bodyMap({ ...sites, zone });
  const result = h("div", { class: "result" });
  async function report(taken) {
    const body = taken
      ? { taken: true, injection_site: picker.value(), taken_at: new Date().toISOString() }
      : { taken: false };
    const outcome = await submit("POST", `/api/v1/me/doses/${dose.seq}/report`, body, { kind: "dose", seq: dose.seq, who: app.me.study_code });
    if (outcome.status === "refused") {
      result.replaceChildren(notice(t("report_refused", { reason: outcome.error }), "error"));
      return;
    }
    await kv.set("flash", outcome.status === "sent" ? t("report_sent") : t("report_saved_offline"));
    app.go("today");
  }
  return section(
    "today_title",
    flash,
    ...header,
    h("p", { class: "dose-state" }, stateLabel(dose.state)),
    picker.element,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => report(true) }, t("i_injected")),
      h("button", { type: "button", class: "secondary", onclick: () => report(false) }, t("i_could_not")),
    ),
    result,
  );
}

// A one-time message carried over a redraw (e.g. "saved, will be sent").
async function flashNotice() {
  const text = await kv.get("flash");
  if (!text) return null;
  await kv.remove("flash");
  return notice(text);
}

// --- calendar ----------------------------------------------------------------------------------------------
async function calendar(app) {
  const zone = app.me.time_zone;
  const doses = await app.load("/api/v1/me/doses");
  const waiting = new Set((await waitingReports("dose")).map((item) => item.meta.seq));
  const now = new Date();
  const row = (d) =>
    h(
      "li",
      { class: `dose dose-${d.state}` },
      h("span", { class: "dose-date" }, formatDate(d.local_date)),
      " ",
      h("span", { class: "dose-label" }, waiting.has(d.seq) ? t("waiting_to_send") : stateLabel(d.state)),
      d.taken_at ? h("span", { class: "hint" }, ` ${formatTime(d.taken_at, zone)}`) : null,
    );
  const coming = doses.filter((d) => new Date(d.window_closes_at) > now && d.state !== "cancelled");
  const past = doses.filter((d) => new Date(d.window_closes_at) <= now).reverse();
  const list = (items) => (items.length ? h("ul", { class: "dose-list" }, items.map(row)) : h("p", {}, t("calendar_empty")));
  return section(
    "calendar_title",
    h("h2", {}, t("calendar_coming")),
    list(coming),
    h("h2", {}, t("calendar_past")),
    list(past),
  );
}

// --- VAS ---------------------------------------------------------------------------------------------------
async function vas(app) {
  const scale = app.me.vas;
  const line = vasLine(scale);
  const result = h("div", { class: "result" });
  const format = (value) => Number(value).toFixed(scale.decimals);
  const readBack = (value) =>
    t("vas_readback", { value: format(value), min: scale.scale_min, max: scale.scale_max, low: scale.anchor_low, high: scale.anchor_high });
  const form = h(
    "form",
    {
      class: "vas-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const value = line.value();
        if (value === null) {
          result.replaceChildren(notice(t("vas_mark_first"), "error"));
          return;
        }
        const outcome = await submit("POST", "/api/v1/me/vas", { value, mode: "vas_line" }, { kind: "vas", who: app.me.study_code });
        const shown =
          outcome.status === "sent"
            ? notice(readBack(outcome.data.value))
            : outcome.status === "pending"
              ? notice(t("vas_readback_pending", { value: format(value) }))
              : notice(t("report_refused", { reason: outcome.error }), "error");
        form.replaceWith(
          h("div", { class: "vas-done" }, shown, h("button", { type: "button", class: "secondary", onclick: () => app.go("vas") }, t("vas_again"))),
        );
        result.replaceChildren();
      },
    },
    h("p", { id: "vas-question" }, t("vas_question")),
    line.element,
    h("button", { type: "submit" }, t("vas_send")),
  );
  line.track.setAttribute("aria-describedby", "vas-question");
  let earlier = [];
  try {
    earlier = await app.load("/api/v1/me/vas");
  } catch (error) {
    if (!(error instanceof Offline)) throw error;
  }
  const waiting = await waitingReports("vas");
  const items = [
    ...waiting.map((item) => h("li", { class: "pending-item" }, `${format(item.body.value)} — ${t("waiting_to_send")}`)),
    ...earlier
      .filter((s) => s.status === "valid")
      .reverse()
      .slice(0, 10)
      .map((s) => h("li", {}, `${formatDate(s.recorded_at, app.me.time_zone)}: ${format(s.value)} (${t(`mode_${s.mode}`)})`)),
  ];
  return section(
    "vas_title",
    form,
    result,
    items.length ? h("h2", {}, t("vas_history")) : null,
    items.length ? h("ul", { class: "history" }, items) : null,
  );
}

// --- adverse events ----------------------------------------------------------------------------------------
function yesNo(name, legendKey) {
  return h(
    "fieldset",
    { class: "choice" },
    h("legend", {}, t(legendKey)),
    ...["yes", "no"].map((answer) =>
      h(
        "div",
        { class: "choice-option" },
        h("input", { type: "radio", name, value: answer, id: `${name}-${answer}` }),
        h("label", { for: `${name}-${answer}` }, t(answer)),
      ),
    ),
  );
}

function chosen(form, name) {
  const checked = form.querySelector(`input[name="${name}"]:checked`);
  return checked ? checked.value : null;
}

async function adverseEvent(app) {
  const reference = await app.load("/api/v1/adverse-event-terms");
  const lang = language();
  const select = h(
    "select",
    { id: "ae-term", name: "term" },
    h("option", { value: "" }, "—"),
    ...reference.terms.map((term) => h("option", { value: term.code }, term.labels[lang] || term.labels.en)),
  );
  const description = h("textarea", { id: "ae-description", name: "description", rows: "3", maxlength: "1000", "aria-describedby": "ae-description-hint" });
  const onset = h("input", { type: "date", id: "ae-onset", name: "onset_date", max: new Date().toISOString().slice(0, 10) });
  const result = h("div", { class: "result" });
  const form = h(
    "form",
    {
      class: "ae-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const term = select.value;
        const words = description.value.trim();
        if (!term) return result.replaceChildren(notice(t("ae_pick_symptom"), "error"));
        if (term === "other" && !words) return result.replaceChildren(notice(t("ae_describe_other"), "error"));
        const hospital = chosen(form, "went_to_hospital");
        const ongoing = chosen(form, "ongoing");
        const body = {
          term,
          description: words,
          other_text: term === "other" ? words : "",
          onset_date: onset.value || null,
          severity: chosen(form, "severity"),
          ongoing: ongoing === null ? null : ongoing === "yes",
          went_to_hospital: hospital === null ? null : hospital === "yes",
        };
        // Going to hospital is serious whatever the connection: the call screen comes at once.
        if (body.went_to_hospital) app.showCall();
        const outcome = await submit("POST", "/api/v1/me/adverse-events", body, { kind: "ae", who: app.me.study_code });
        if (outcome.status === "refused") return result.replaceChildren(notice(t("report_refused", { reason: outcome.error }), "error"));
        if (outcome.status === "sent" && outcome.data.suspected_serious) app.showCall();
        form.reset();
        result.replaceChildren(notice(outcome.status === "sent" ? t("ae_sent") : t("report_saved_offline")));
      },
    },
    h("label", { for: "ae-term" }, t("ae_symptom")),
    select,
    h("label", { for: "ae-description" }, t("ae_describe")),
    h("p", { id: "ae-description-hint", class: "hint" }, t("ae_describe_hint")),
    description,
    h("label", { for: "ae-onset" }, t("ae_onset")),
    onset,
    h(
      "fieldset",
      { class: "choice" },
      h("legend", {}, t("ae_severity")),
      ...["mild", "moderate", "severe"].map((level) =>
        h(
          "div",
          { class: "choice-option" },
          h("input", { type: "radio", name: "severity", value: level, id: `severity-${level}` }),
          h("label", { for: `severity-${level}` }, t(`ae_${level}`)),
        ),
      ),
    ),
    yesNo("ongoing", "ae_ongoing"),
    yesNo("went_to_hospital", "ae_hospital"),
    h("button", { type: "submit" }, t("ae_send")),
  );
  let earlier = [];
  try {
    earlier = await app.load("/api/v1/me/adverse-events");
  } catch (error) {
    if (!(error instanceof Offline)) throw error;
  }
  const labelOf = (code) => {
    const term = reference.terms.find((x) => x.code === code);
    return term ? term.labels[lang] || term.labels.en : code;
  };
  let siteLabels = {};
  if (earlier.some((ae) => ae.injection_site)) {
    const sites = await app.load("/api/v1/me/injection-sites");
    siteLabels = Object.fromEntries(sites.sites.map((s) => [s.site, s.label]));
  }
  const waiting = await waitingReports("ae");
  const items = [
    ...waiting.map((item) => h("li", { class: "pending-item" }, `${labelOf(item.body.term)} — ${t("waiting_to_send")}`)),
    ...earlier.slice(0, 10).map((ae) =>
      h(
        "li",
        {},
        `${formatDate(ae.reported_at, app.me.time_zone)}: ${labelOf(ae.term)}`,
        ae.injection_site ? ` (${t("ae_site", { site: siteLabels[ae.injection_site] || ae.injection_site })})` : "",
      ),
    ),
  ];
  return section(
    "ae_title",
    form,
    result,
    items.length ? h("h2", {}, t("ae_earlier")) : null,
    items.length ? h("ul", { class: "history" }, items) : null,
  );
}

// --- messages ----------------------------------------------------------------------------------------------
async function messages(app) {
  const rows = await app.load("/api/v1/me/messages?limit=50");
  if (!rows.length) return section("messages_title", h("p", {}, t("messages_empty")));
  return section(
    "messages_title",
    h(
      "ul",
      { class: "messages" },
      rows.map((m) =>
        h(
          "li",
          { class: `message message-${m.direction}` },
          h("p", { class: "message-meta" }, `${m.direction === "inbound" ? t("messages_from_you") : t("messages_to_you")} · ${formatDateTime(m.at, app.me.time_zone)}`),
          h("p", { class: "message-body" }, m.body),
        ),
      ),
    ),
  );
}

// --- settings ----------------------------------------------------------------------------------------------
async function settings(app) {
  const me = app.me;
  const result = h("div", { class: "result" });
  const reminder = h("input", { type: "time", id: "reminder-time", name: "reminder_time", value: me.reminder_time, required: true });
  const lang = h(
    "select",
    { id: "language", name: "language" },
    ...Object.entries(LANGUAGES).map(([code, name]) =>
      h("option", { value: code, selected: code === me.language, lang: code }, name),
    ),
  );
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await app.setMe(await request("PATCH", "/api/v1/me", { body: { reminder_time: reminder.value, language: lang.value } }));
          setLanguage(app.me.language);
          await kv.set("flash", t("settings_saved"));
          app.go("settings");
        } catch (error) {
          const text = error instanceof Offline ? t("settings_needs_connection") : t("error_generic", { reason: error.message });
          result.replaceChildren(notice(text, "error"));
        }
      },
    },
    h("label", { for: "reminder-time" }, t("settings_reminder")),
    reminder,
    h("label", { for: "language" }, t("settings_language")),
    lang,
    h("button", { type: "submit" }, t("settings_save")),
  );
  const calendarResult = h("div", { class: "result" });
  const calendarButton = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: async () => {
        try {
          const link = await request("POST", "/api/v1/me/calendar-token", { key: newKey() });
          calendarResult.replaceChildren(
            h("p", {}, h("a", { href: link.webcal_url }, t("settings_calendar_open"))),
            h("label", { for: "calendar-url" }, t("settings_calendar_copy")),
            h("input", { id: "calendar-url", readonly: true, value: link.url }),
          );
        } catch (error) {
          const text = error instanceof Offline ? t("settings_needs_connection") : t("error_generic", { reason: error.message });
          calendarResult.replaceChildren(notice(text, "error"));
        }
      },
    },
    t("settings_calendar_make"),
  );
  const signOutButton = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        try {
          await flush(); // what is waiting goes first, if it can
          await signOut();
        } catch (error) {
          if (!(error instanceof Offline) && !(error instanceof ApiError)) throw error;
        }
        await kv.clear();
        await outbox.clear();
        app.signedOut(false);
      },
    },
    t("settings_sign_out"),
  );
  return section(
    "settings_title",
    await flashNotice(),
    h("p", {}, t("settings_study", { study: me.study, code: me.study_code })),
    form,
    result,
    h("h2", {}, t("settings_calendar")),
    h("p", {}, t("settings_calendar_intro")),
    calendarButton,
    calendarResult,
    h("h2", {}, t("settings_sign_out")),
    signOutButton,
  );
}

export const SCREENS = { today, calendar, vas, ae: adverseEvent, messages, settings };
