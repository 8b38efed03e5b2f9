import { invalid } from "./errors.js";

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** Days in month `m` (1-12) of year `y` (proleptic Gregorian). */
function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm). */
function daysFromCivil(year: number, m: number, d: number): number {
  const y = m <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

/**
 * Parses an RFC 3339 instant to epoch ms, strictly: every field in range (no 30 February, no hour 24,
 * no offset past ±23:59); `field` names it in the error. Fractions of a millisecond are dropped
 * (truncated, as Date.parse does). On the ingest path for every event: integer arithmetic only.
 */
export function parseInstant(text: string, field: string): number {
  const m = RFC3339.exec(text);
  if (m !== null) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    const d = Number(m[3]);
    const h = Number(m[4]);
    const mi = Number(m[5]);
    const sec = Number(m[6]);
    const offH = m[8] === undefined ? 0 : Number(m[8]);
    const offM = m[9] === undefined ? 0 : Number(m[9]);
    if (mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo) && h <= 23 && mi <= 59 && sec <= 59) {
      if (offH <= 23 && offM <= 59) {
        const frac = m[7];
        const ms = frac === undefined ? 0 : Number(`${frac.slice(1, 4)}00`.slice(0, 3));
        // Date.UTC maps years 0-99 to 1900-1999: set the full year afterwards.
        const sign = text[text.length - 6] === "-" ? -1 : 1;
        const local = (daysFromCivil(y, mo, d) * 86_400 + (h * 60 + mi) * 60 + sec) * 1000 + ms;
        return local - sign * (offH * 60 + offM) * 60_000;
      }
    }
  }
  throw invalid(`${field} must be an RFC 3339 instant`, { field });
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
