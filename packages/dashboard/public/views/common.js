// @ts-check
/** Pieces every view uses: headings, loading and error notes, tables, state badges. */
import { h } from "../dom.js";

/**
 * @param {string} title
 * @param {string} [subtitle]
 */
export function heading(title, subtitle) {
  document.title = `${title} · Tollgate`;
  return h(
    "div",
    { class: "view-head" },
    h("h1", { tabindex: "-1" }, title),
    subtitle ? h("p", { class: "subtitle" }, subtitle) : null,
  );
}

/** @param {string} text */
export function loading(text) {
  return h("p", { class: "loading", role: "status" }, text);
}

/**
 * A section that failed to load on its own (the rest of the view still shows).
 * @param {unknown} err
 * @param {string} what
 */
export function failed(err, what) {
  const msg = err instanceof Error ? err.message : String(err);
  const status = /** @type {{status?: number}} */ (err).status;
  const text =
    status === 403
      ? `${what}: this needs an admin key (you are signed in with a service key).`
      : status === 404
        ? `${what}: this server does not offer it (${msg}).`
        : `${what} could not be loaded: ${msg}`;
  return h("p", { class: "error", role: "alert" }, text);
}

/**
 * @typedef {{ label: string, num?: boolean, cell: (row: any) => Node | string | null }} Column
 */

/**
 * A table with a caption, column headers, and a first column of row headers.
 * `stack`: on a phone each row becomes a block of "label: value" lines instead of a wide row.
 * @param {{ caption: string, columns: Column[], rows: any[], empty: string, testid?: string, stack?: boolean }} o
 */
export function table(o) {
  if (o.rows.length === 0) return h("p", { class: "empty" }, o.empty);
  return h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": o.caption },
    h(
      "table",
      { class: o.stack ? "data stack" : "data", "data-testid": o.testid },
      h("caption", null, o.caption),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ...o.columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : undefined }, c.label)),
        ),
      ),
      h(
        "tbody",
        null,
        ...o.rows.map((row) =>
          h(
            "tr",
            null,
            ...o.columns.map((c, i) =>
              i === 0
                ? h("th", { scope: "row" }, c.cell(row))
                : h("td", { class: c.num ? "num" : undefined, "data-label": c.label }, c.cell(row)),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * A status word in a coloured pill: the word carries the meaning, the colour repeats it.
 * @param {string} state
 */
export function badge(state) {
  return h("span", { class: `badge badge-${state.replace(/[^a-z_]/g, "")}` }, state);
}

/**
 * @param {string} label
 * @param {string} value
 * @param {string} testid
 * @param {string} exact
 * @param {string} [note]
 */
export function stat(label, value, testid, exact, note) {
  return h(
    "div",
    { class: "stat" },
    h("dt", null, label),
    h("dd", { "data-testid": testid, "data-value": exact }, value),
    note ? h("dd", { class: "stat-note" }, note) : null,
  );
}
