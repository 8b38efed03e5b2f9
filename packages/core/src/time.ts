import { invalid } from "./errors.js";

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 instant to epoch ms; `field` names it in the error. */
export function parseInstant(text: string, field: string): number {
  const ms = RFC3339.test(text) ? Date.parse(text.replace(" ", "T")) : Number.NaN;
  if (!Number.isFinite(ms)) throw invalid(`${field} must be an RFC 3339 instant`, { field });
  return ms;
}

/** Formats epoch ms as RFC 3339 UTC, without milliseconds when they are zero. */
export function formatInstant(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}
