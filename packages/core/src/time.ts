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
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}
