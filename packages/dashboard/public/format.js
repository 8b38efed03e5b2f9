// @ts-check
/**
 * Pure helpers (no DOM): exact sums of the API's counts and USD strings, and display formats.
 * Counts arrive as JSON numbers, or as decimal strings once past 2^53-1; money as decimal USD
 * strings ("12.345678"). Both are summed as bigints so that a total equals the API's total exactly.
 */

/** pico-USD per USD: the API prints money with up to 12 decimals. */
const PICO = 1_000_000_000_000n;

/**
 * A count as the API prints it (number or decimal string) → bigint.
 * @param {number | string | null | undefined} v
 * @returns {bigint}
 */
export function toCount(v) {
  if (v === null || v === undefined || v === "") return 0n;
  return BigInt(typeof v === "number" ? Math.trunc(v) : v);
}

/**
 * A decimal USD string ("-1.50", "0.004500") → pico-USD.
 * @param {string | null | undefined} text
 * @returns {bigint}
 */
export function parseUsd(text) {
  if (text === null || text === undefined || text === "") return 0n;
  const m = /^(-?)(\d+)(?:\.(\d{1,12}))?$/.exec(String(text).trim());
  if (!m) throw new Error(`not a USD amount: ${text}`);
  const pico = BigInt(m[2] ?? "0") * PICO + BigInt((m[3] ?? "").padEnd(12, "0") || "0");
  return m[1] === "-" ? -pico : pico;
}

/**
 * pico-USD → the API's own decimal string (at least 6 decimals, trailing zeros past them dropped).
 * @param {bigint} pico
 * @returns {string}
 */
export function usdString(pico) {
  const neg = pico < 0n;
  const abs = neg ? -pico : pico;
  let frac = (abs % PICO).toString().padStart(12, "0").replace(/0+$/, "");
  if (frac.length < 6) frac = frac.padEnd(6, "0");
  return `${neg ? "-" : ""}${abs / PICO}.${frac}`;
}

/**
 * pico-USD → "$1,234.57" (cents; "<$0.01" for a small non-zero amount).
 * @param {bigint} pico
 * @returns {string}
 */
export function formatMoney(pico) {
  const neg = pico < 0n;
  const abs = neg ? -pico : pico;
  if (abs > 0n && abs < PICO / 100n) return neg ? "-<$0.01" : "<$0.01";
  const cents = (abs + PICO / 200n) / (PICO / 100n);
  const dollars = cents / 100n;
  const c = (cents % 100n).toString().padStart(2, "0");
  return `${neg ? "-" : ""}$${groupDigits(dollars.toString())}.${c}`;
}

/**
 * @param {string} digits
 * @returns {string}
 */
function groupDigits(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * An exact count with thousands separators.
 * @param {bigint | number | string} n
 * @returns {string}
 */
export function formatCount(n) {
  const b = typeof n === "bigint" ? n : toCount(n);
  return b < 0n ? `-${groupDigits((-b).toString())}` : groupDigits(b.toString());
}

/**
 * A short count for chart axes: 1.2K, 3.4M, 5.6B.
 * @param {number} n
 * @returns {string}
 */
export function formatShort(n) {
  const abs = Math.abs(n);
  for (const [div, unit] of /** @type {const} */ ([
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ])) {
    if (abs >= div) return `${(n / div).toFixed(abs / div >= 100 ? 0 : 1).replace(/\.0$/, "")}${unit}`;
  }
  return String(Math.round(n * 100) / 100);
}

/**
 * A percent (number or null) → "12.3 %", "—" for null.
 * @param {number | null | undefined} p
 * @param {{ sign?: boolean }} [opts]
 * @returns {string}
 */
export function formatPercent(p, opts = {}) {
  if (p === null || p === undefined || Number.isNaN(p)) return "—";
  const text = `${Math.abs(p) >= 100 ? Math.round(p) : Math.round(p * 10) / 10} %`;
  return opts.sign && p > 0 ? `+${text}` : text;
}

/** The totals columns of every report row. */
export const METRICS = /** @type {const} */ ({
  tokens: { label: "Tokens", column: "tokens_total" },
  requests: { label: "Requests", column: "requests" },
  cost: { label: "Cost (USD)", column: "cost" },
});

/**
 * @typedef {{ tokens_in?: number|string, tokens_out?: number|string, tokens_total?: number|string,
 *   steps?: number|string, requests?: number|string, cost?: string }} TotalsRow
 * @typedef {{ tokensIn: bigint, tokensOut: bigint, tokensTotal: bigint, steps: bigint, requests: bigint,
 *   cost: bigint }} Totals
 */

/** @returns {Totals} */
export function zeroTotals() {
  return { tokensIn: 0n, tokensOut: 0n, tokensTotal: 0n, steps: 0n, requests: 0n, cost: 0n };
}

/**
 * Adds report rows exactly.
 * @param {TotalsRow[]} rows
 * @returns {Totals}
 */
export function sumRows(rows) {
  const t = zeroTotals();
  for (const r of rows) {
    t.tokensIn += toCount(r.tokens_in);
    t.tokensOut += toCount(r.tokens_out);
    t.tokensTotal += toCount(r.tokens_total);
    t.steps += toCount(r.steps);
    t.requests += toCount(r.requests);
    t.cost += parseUsd(r.cost);
  }
  return t;
}

/**
 * One metric of a row as a number (for drawing) and as exact text (for reading).
 * @param {TotalsRow} row
 * @param {"tokens" | "requests" | "cost"} metric
 * @returns {{ value: number, exact: string, text: string }}
 */
export function metricOf(row, metric) {
  if (metric === "cost") {
    const pico = parseUsd(row.cost);
    return { value: Number(pico) / 1e12, exact: usdString(pico), text: formatMoney(pico) };
  }
  const n = toCount(metric === "tokens" ? row.tokens_total : row.requests);
  return { value: Number(n), exact: n.toString(), text: formatCount(n) };
}

/**
 * RFC 3339 → "2024-03-04" (UTC), or with the hour: "2024-03-04 13:00".
 * @param {string | null | undefined} iso
 * @param {{ time?: boolean }} [opts]
 * @returns {string}
 */
export function formatDate(iso, opts = {}) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const day = d.toISOString().slice(0, 10);
  return opts.time ? `${day} ${d.toISOString().slice(11, 16)} UTC` : day;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * A chart label for a period start: "Mar 4" (day, week) or "Mar 2024" (month).
 * @param {string} iso
 * @param {"day" | "week" | "month" | "hour"} unit
 * @returns {string}
 */
export function periodLabel(iso, unit) {
  const d = new Date(iso);
  const month = MONTHS[d.getUTCMonth()];
  if (unit === "month") return `${month} ${d.getUTCFullYear()}`;
  if (unit === "hour") return `${String(d.getUTCHours()).padStart(2, "0")}:00`;
  return `${month} ${d.getUTCDate()}`;
}

/**
 * A time until (or since) an instant, relative to `now` (ms): "in 3 d 4 h", "2 h ago".
 * @param {string | null | undefined} iso
 * @param {number} now
 * @returns {string}
 */
export function formatRelative(iso, now) {
  if (!iso) return "—";
  const ms = new Date(iso).getTime() - now;
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const text = d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * "YYYY-MM-DD" of a date input → RFC 3339 instant at 00:00 UTC; `endOfDay` gives the next midnight
 * (a range's end is exclusive, the date input's end inclusive).
 * @param {string} day
 * @param {boolean} [endOfDay]
 * @returns {string | undefined}
 */
export function dayToInstant(day, endOfDay = false) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const ms = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(ms)) return undefined;
  return new Date(ms + (endOfDay ? 86_400_000 : 0)).toISOString().replace(".000Z", "Z");
}

/**
 * A query string of the parameters that are set, in the given order.
 * @param {Record<string, string | number | null | undefined>} params
 * @returns {string}
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}
