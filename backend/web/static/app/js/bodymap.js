// The injection-site picker: a body map with six tappable regions and, for keyboards and screen readers, the
// same six sites as radio buttons (the map mirrors them). The participant's left is on the left of the picture,
// as when looking down at oneself; the note under the map says so.

import { h } from "./dom.js";
import { formatDate, t } from "./i18n.js";

const REGIONS = {
  arm_left: { x: 24, y: 72, width: 26, height: 58, short: "L" },
  arm_right: { x: 150, y: 72, width: 26, height: 58, short: "R" },
  abdomen_left: { x: 68, y: 122, width: 31, height: 40, short: "L" },
  abdomen_right: { x: 101, y: 122, width: 31, height: 40, short: "R" },
  thigh_left: { x: 66, y: 186, width: 32, height: 62, short: "L" },
  thigh_right: { x: 102, y: 186, width: 32, height: 62, short: "R" },
};

function figure() {
  return h(
    "g",
    { class: "body-outline" },
    h("circle", { cx: 100, cy: 34, r: 20 }),
    h("rect", { x: 60, y: 60, width: 80, height: 118, rx: 22 }),
    h("rect", { x: 22, y: 64, width: 30, height: 120, rx: 14 }),
    h("rect", { x: 148, y: 64, width: 30, height: 120, rx: 14 }),
    h("rect", { x: 62, y: 170, width: 38, height: 124, rx: 16 }),
    h("rect", { x: 100, y: 170, width: 38, height: 124, rx: 16 }),
  );
}

// sites: [{site, label, last_used_at}], suggested: a site code; zone: the participant's time zone.
export function bodyMap({ sites, suggested, zone }, onPick) {
  const regions = new Map();
  const radios = new Map();
  let chosen = null;

  function pick(site) {
    chosen = site;
    for (const [code, region] of regions) region.classList.toggle("chosen", code === site);
    for (const [code, radio] of radios) radio.checked = code === site;
    if (onPick) onPick(site);
  }

  const svg = h(
    "svg",
    { class: "body-map", viewBox: "0 0 200 300", "aria-hidden": "true", focusable: "false" },
    figure(),
    ...sites
      .filter(({ site }) => REGIONS[site])
      .map(({ site }) => {
        const box = REGIONS[site];
        const region = h(
          "g",
          {
            class: `site-region${site === suggested ? " suggested" : ""}`,
            "data-site": site,
            onclick: () => pick(site),
          },
          h("rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: 6 }),
          h("text", { x: box.x + box.width / 2, y: box.y + box.height / 2 + 5, "text-anchor": "middle" }, box.short),
        );
        regions.set(site, region);
        return region;
      }),
  );

  const suggestedLabel = (sites.find((s) => s.site === suggested) || {}).label;
  const list = h(
    "fieldset",
    { class: "site-list" },
    h("legend", {}, t("today_site_legend")),
    suggestedLabel ? h("p", { class: "hint" }, t("today_site_suggested", { site: suggestedLabel })) : null,
    ...sites.map(({ site, label, last_used_at: last }) => {
      const radio = h("input", {
        type: "radio",
        name: "injection_site",
        value: site,
        id: `site-${site}`,
        onchange: () => pick(site),
      });
      radios.set(site, radio);
      const when = last ? t("today_site_last", { date: formatDate(last, zone) }) : t("today_site_never");
      return h(
        "div",
        { class: "site-option" },
        radio,
        h("label", { for: `site-${site}` }, label, " ", h("span", { class: "hint" }, `(${when})`)),
      );
    }),
  );

  const element = h(
    "div",
    { class: "site-picker" },
    h("figure", { class: "body-map-figure" }, svg, h("figcaption", {}, t("body_map_note"))),
    list,
  );
  if (suggested) pick(suggested);
  return { element, value: () => chosen };
}
