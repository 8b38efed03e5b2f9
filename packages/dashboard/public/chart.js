// @ts-check
/**
 * Bar charts drawn as SVG (no charting library): a few dozen bars at most, so plain elements are
 * fast. Each chart comes with its numbers as a table (for screen readers, keyboard users and anyone
 * who wants the exact figures) and every bar carries its exact value in data-value.
 */
import { h, s } from "./dom.js";
import { formatShort } from "./format.js";

/**
 * @typedef {{ label: string, value: number, exact: string, text: string, note?: string, period?: string }} Bar
 */

/** Default drawing size; the SVG scales to its box, text with it. */
const WIDTH = 720;
const H = 240;
const PAD = { top: 16, right: 12, bottom: 28, left: 52 };

/**
 * @param {number} max
 * @returns {number[]} 4 or 5 round ticks from 0 to at least max
 */
function ticks(max) {
  if (max <= 0) return [0, 1];
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
  const out = [];
  for (let t = 0; t <= max + step * 0.999; t += step) out.push(t);
  return out;
}

/**
 * Least-squares line through the values (index as x): [value at first, value at last].
 * @param {number[]} ys
 * @returns {[number, number] | null}
 */
export function leastSquares(ys) {
  const n = ys.length;
  if (n < 2) return null;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  const slope = den === 0 ? 0 : num / den;
  return [my - slope * mx, my + slope * (n - 1 - mx)];
}

/**
 * @param {{ id: string, title: string, description: string, bars: Bar[], metricLabel: string,
 *   trend?: boolean, noteLabel?: string, width?: number }} o `width`: a narrower drawing for a
 *   narrower box keeps its text readable
 * @returns {HTMLElement}
 */
export function barChart(o) {
  const { bars } = o;
  const W = o.width ?? WIDTH;
  const max = Math.max(0, ...bars.map((b) => b.value));
  const ys = ticks(max);
  const top = ys[ys.length - 1] ?? 1;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, bars.length);
  const barW = Math.max(2, slot * 0.72);
  const y = (/** @type {number} */ v) => PAD.top + plotH - (top === 0 ? 0 : (v / top) * plotH);
  // As many labels as fit (12px text: about 7 units a character, plus a gap), spread evenly.
  const labelW = Math.max(...bars.map((b) => b.label.length), 1) * 7 + 12;
  const every = Math.ceil(bars.length / Math.max(2, Math.floor(plotW / labelW)));

  const svg = s(
    "svg",
    {
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-labelledby": `${o.id}-title ${o.id}-desc`,
      class: "chart",
      "data-testid": `${o.id}-chart`,
    },
    s("title", { id: `${o.id}-title` }, o.title),
    s("desc", { id: `${o.id}-desc` }, o.description),
    ...ys.map((t) =>
      s(
        "g",
        { class: "tick" },
        s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t) }),
        s("text", { x: PAD.left - 6, y: y(t) + 4, "text-anchor": "end" }, formatShort(t)),
      ),
    ),
    ...bars.map((b, i) => {
      const x = PAD.left + i * slot + (slot - barW) / 2;
      const height = Math.max(b.value > 0 ? 1 : 0, PAD.top + plotH - y(b.value));
      return s(
        "g",
        { class: "bar" },
        s(
          "rect",
          {
            x: x.toFixed(1),
            y: (PAD.top + plotH - height).toFixed(1),
            width: barW.toFixed(1),
            height: height.toFixed(1),
            "data-value": b.exact,
            "data-period": b.period,
          },
          s("title", null, `${b.label}: ${b.text}${b.note ? ` (${b.note})` : ""}`),
        ),
        i % every === 0
          ? s("text", { x: (x + barW / 2).toFixed(1), y: H - 8, "text-anchor": "middle" }, b.label)
          : null,
      );
    }),
  );
  if (o.trend) {
    const line = leastSquares(bars.map((b) => b.value));
    if (line) {
      const x0 = PAD.left + slot / 2;
      const x1 = PAD.left + (bars.length - 0.5) * slot;
      svg.append(
        s("line", {
          class: "trend",
          x1: x0,
          x2: x1,
          y1: y(Math.max(0, line[0])).toFixed(1),
          y2: y(Math.max(0, line[1])).toFixed(1),
        }),
      );
    }
  }

  const table = h(
    "table",
    { class: "data" },
    h("caption", { class: "visually-hidden" }, o.title),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", { scope: "col" }, "Period"),
        h("th", { scope: "col", class: "num" }, o.metricLabel),
        o.noteLabel ? h("th", { scope: "col", class: "num" }, o.noteLabel) : null,
      ),
    ),
    h(
      "tbody",
      null,
      ...bars.map((b) =>
        h(
          "tr",
          null,
          h("th", { scope: "row" }, b.period ? b.period.slice(0, 10) : b.label),
          h("td", { class: "num" }, b.text),
          o.noteLabel ? h("td", { class: "num" }, b.note ?? "—") : null,
        ),
      ),
    ),
  );
  return h(
    "figure",
    { class: "chart-figure" },
    svg,
    h("details", null, h("summary", null, "Show the numbers"), h("div", { class: "scroll" }, table)),
  );
}

/**
 * A horizontal meter (limit state, share of total): a bar with its text next to it, never colour alone.
 * @param {{ percent: number | null, state?: string, label: string, text: string }} o
 * @returns {HTMLElement}
 */
export function meterBar(o) {
  const pct = o.percent === null ? 0 : Math.max(0, Math.min(100, o.percent));
  // Set through the CSSOM: the page's CSP refuses inline style attributes.
  const fill = h("div", { class: "meter-fill" });
  fill.style.width = `${pct.toFixed(2)}%`;
  return h(
    "div",
    { class: `meter ${o.state ? `state-${o.state}` : ""}` },
    h(
      "div",
      {
        class: "meter-track",
        role: "meter",
        "aria-label": o.label,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": Math.round(pct * 10) / 10,
        "aria-valuetext": o.text,
      },
      fill,
    ),
    h("span", { class: "meter-text" }, o.text),
  );
}
