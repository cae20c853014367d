// The visual analogue scale: a horizontal line 100 mm long (CSS millimetres, clamped to the screen), the
// protocol's words at its two ends, and no number anywhere while rating. A tap or a drag puts the mark; the
// keyboard moves it by 0.1 (arrows), 1 (Page Up/Down) or to an end (Home/End). Screen readers hear a slider
// with its value in words.

import { h } from "./dom.js";
import { t } from "./i18n.js";

export function vasLine(scale, { onChange } = {}) {
  const { scale_min: min, scale_max: max, decimals, anchor_low: low, anchor_high: high } = scale;
  const step = 1 / 10 ** decimals;
  let value = null;

  const mark = h("span", { class: "vas-mark", hidden: true });
  const track = h(
    "div",
    {
      class: "vas-track",
      role: "slider",
      tabindex: "0",
      "aria-label": t("vas_slider_label"),
      "aria-valuemin": String(min),
      "aria-valuemax": String(max),
      "aria-valuenow": String(min),
      "aria-valuetext": t("vas_unmarked"),
      "aria-orientation": "horizontal",
    },
    h("span", { class: "vas-line" }),
    mark,
  );

  function round(v) {
    const clamped = Math.min(max, Math.max(min, v));
    return Number((Math.round(clamped / step) * step).toFixed(decimals));
  }

  function set(v) {
    value = round(v);
    const fraction = (value - min) / (max - min);
    mark.hidden = false;
    mark.style.left = `${fraction * 100}%`;
    track.setAttribute("aria-valuenow", String(value));
    track.setAttribute(
      "aria-valuetext",
      t("vas_valuetext", { value: value.toFixed(decimals), min, max, low, high }),
    );
    if (onChange) onChange(value);
  }

  function fromPointer(event) {
    const box = track.getBoundingClientRect();
    set(min + ((event.clientX - box.left) / box.width) * (max - min));
  }

  track.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    track.focus();
    track.setPointerCapture(event.pointerId);
    fromPointer(event);
  });
  track.addEventListener("pointermove", (event) => {
    if (track.hasPointerCapture(event.pointerId)) fromPointer(event);
  });
  track.addEventListener("keydown", (event) => {
    const start = value === null ? min : value;
    const moves = {
      ArrowRight: start + step,
      ArrowUp: start + step,
      ArrowLeft: start - step,
      ArrowDown: start - step,
      PageUp: start + 1,
      PageDown: start - 1,
      Home: min,
      End: max,
    };
    if (event.key in moves) {
      event.preventDefault();
      set(moves[event.key]);
    }
  });

  const element = h(
    "div",
    { class: "vas" },
    track,
    h(
      "div",
      { class: "vas-anchors", "aria-hidden": "true" },
      h("span", { class: "vas-anchor-low" }, low),
      h("span", { class: "vas-anchor-high" }, high),
    ),
  );
  return { element, track, value: () => value };
}
