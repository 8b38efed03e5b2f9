import { invalid } from "./errors.js";

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

const daysInMonth = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();

/**
 * Parses an RFC 3339 instant to epoch ms, strictly: every field in range (no 30 February, no hour 24,
 * no offset past ±23:59); `field` names it in the error.
 */
export function parseInstant(text: string, field: string): number {
  const m = RFC3339.exec(text);
  const n = (i: number) => Number(m![i]);
  const valid =
    m !== null &&
    n(2) >= 1 &&
    n(2) <= 12 &&
    n(3) >= 1 &&
    n(3) <= daysInMonth(n(1), n(2)) &&
    n(4) <= 23 &&
    n(5) <= 59 &&
    n(6) <= 59 &&
    (m[8] === undefined || (n(8) <= 23 && n(9) <= 59));
  const ms = valid ? Date.parse(text.replace(" ", "T")) : Number.NaN;
  if (!Number.isFinite(ms)) throw invalid(`${field} must be an RFC 3339 instant`, { field });
  return ms;
}

/** Formats epoch ms as RFC 3339 UTC, without milliseconds when they are zero. */
export function formatInstant(ms: number): string {
  // For a day formatted before (a check's answer carries instants of a few days: now, the end of
  // the month), only the time of day is written: the same characters toISOString gives, without a
  // Date per call.
  const day = Math.floor(ms / DAY_MS);
  const prefix = Number.isInteger(ms) ? dayPrefixes.get(day) : undefined;
  if (prefix !== undefined) {
    const t = ms - day * DAY_MS;
    const f = t % 1000;
    const hms = `${prefix}${pad2(Math.floor(t / 3_600_000))}:${pad2(Math.floor(t / 60_000) % 60)}:${pad2(Math.floor(t / 1000) % 60)}`;
    return f === 0 ? `${hms}Z` : `${hms}.${f < 10 ? "00" : f < 100 ? "0" : ""}${f}Z`;
  }
  const iso = new Date(ms).toISOString();
  // Years 1970 to 9999 have the plain "YYYY-MM-DDT" prefix; remember this day's.
  if (Number.isInteger(ms) && ms >= 0 && ms < YEAR_10000_MS) {
    if (dayPrefixes.size >= DAY_PREFIXES_MAX) dayPrefixes.clear();
    dayPrefixes.set(day, iso.slice(0, 11));
  }
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}

const DAY_MS = 86_400_000;
const YEAR_10000_MS = 253_402_300_800_000;
/** UTC day number → its "YYYY-MM-DDT", for the days formatInstant formatted lately. */
const dayPrefixes = new Map<number, string>();
const DAY_PREFIXES_MAX = 64;
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
