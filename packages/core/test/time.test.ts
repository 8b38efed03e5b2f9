import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatInstant, parseInstant } from "../src/time.js";

/** The definition parseInstant is pinned to: the regex, each field in range, then Date.parse. */
function reference(text: string): number {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/.exec(
      text,
    );
  if (m === null) return Number.NaN;
  const n = (i: number) => Number(m[i]);
  const days = new Date(Date.UTC(2000, n(2), 0)).getUTCDate(); // month length, leap years below
  const leap = (n(1) % 4 === 0 && n(1) % 100 !== 0) || n(1) % 400 === 0;
  const monthDays = n(2) === 2 ? (leap ? 29 : 28) : days;
  const valid =
    n(2) >= 1 &&
    n(2) <= 12 &&
    n(3) >= 1 &&
    n(3) <= monthDays &&
    n(4) <= 23 &&
    n(5) <= 59 &&
    n(6) <= 59 &&
    (m[8] === undefined || (n(8) <= 23 && n(9) <= 59));
  return valid ? Date.parse(text.replace(/[ t]/, "T").replace(/z$/, "Z")) : Number.NaN;
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");
/** Strings shaped like RFC 3339 instants, fields sometimes out of range. */
const instantText = fc
  .record({
    y: fc.integer({ min: 0, max: 9999 }),
    mo: fc.integer({ min: 0, max: 13 }),
    d: fc.integer({ min: 0, max: 32 }),
    h: fc.integer({ min: 0, max: 24 }),
    mi: fc.integer({ min: 0, max: 60 }),
    s: fc.integer({ min: 0, max: 60 }),
    frac: fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined }),
    sep: fc.constantFrom("T", "t", " "),
    zone: fc.oneof(
      fc.constantFrom("Z", "z"),
      fc
        .record({
          sign: fc.constantFrom("+", "-"),
          h: fc.integer({ min: 0, max: 24 }),
          m: fc.integer({ min: 0, max: 60 }),
        })
        .map((o) => `${o.sign}${pad(o.h, 2)}:${pad(o.m, 2)}`),
    ),
  })
  .map(
    (r) =>
      `${pad(r.y, 4)}-${pad(r.mo, 2)}-${pad(r.d, 2)}${r.sep}${pad(r.h, 2)}:${pad(r.mi, 2)}:${pad(r.s, 2)}` +
      `${r.frac === undefined ? "" : `.${r.frac}`}${r.zone}`,
  );

const parsed = (text: string) => {
  try {
    return parseInstant(text, "at");
  } catch {
    return Number.NaN;
  }
};

describe("parseInstant", () => {
  it("equals the regex + range checks + Date.parse definition on RFC 3339-shaped text", () => {
    fc.assert(
      fc.property(instantText, (text) => {
        expect(parsed(text)).toBe(reference(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it("round-trips formatInstant over the whole range of 4-digit years", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(0, 0, 1) - 1900 * 365.2425 * 86_400_000, max: Date.UTC(9999, 11, 31) }),
        (ms) => {
          const text = new Date(ms).toISOString();
          if (!/^\d{4}-/.test(text)) return;
          expect(parseInstant(text, "at")).toBe(ms);
          expect(parseInstant(formatInstant(ms), "at")).toBe(ms);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it("refuses what is not an instant, naming the field", () => {
    for (const bad of [
      "2024-02-30T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "2024-01-01T24:00:00Z",
      "2024-01-01",
      "x",
    ])
      expect(() => parseInstant(bad, "events[3].timestamp")).toThrow(
        /events\[3\]\.timestamp must be an RFC 3339 instant/,
      );
    expect(parseInstant("2024-02-29T23:59:59.999+01:30", "at")).toBe(Date.UTC(2024, 1, 29, 22, 29, 59, 999));
  });
});
