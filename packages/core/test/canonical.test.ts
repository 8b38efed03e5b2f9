import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalFlat, canonicalJson } from "../src/canonical.js";

const key = fc.oneof(
  fc.constantFrom(
    "tokens_in",
    "tokens_out",
    "cost",
    "model",
    "workflow",
    "0",
    "9",
    "10",
    "a",
    "B",
    "é",
    "\u{1F600}",
  ),
  fc.string({ minLength: 1, maxLength: 6 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 3 }),
);
const value = fc.oneof(fc.integer(), fc.maxSafeNat(), fc.string({ maxLength: 6 }));

/** The reference: keys sorted with sort(), whatever order they come in. */
function reference(obj: Record<string, string | number>): string {
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`).join(",")}}`;
}

describe("canonicalFlat", () => {
  it("is the JSON of the object with its keys sorted, in whatever order they were added", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 24 }), fc.boolean(), (entries, reversed) => {
        const obj: Record<string, string | number> = {};
        for (const [k, v] of reversed ? [...entries].reverse() : entries)
          Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
        const out = canonicalFlat(obj);
        expect(out).toBe(reference(obj));
        expect(out).toBe(canonicalJson(obj));
        // Keys added in sorted order (the path that skips the sort) give the same text.
        const sorted: Record<string, string | number> = {};
        for (const k of Object.keys(obj).sort())
          Object.defineProperty(sorted, k, {
            value: obj[k],
            enumerable: true,
            writable: true,
            configurable: true,
          });
        expect(canonicalFlat(sorted)).toBe(out);
      }),
      { numRuns: 2000 },
    );
  });

  it("sorts keys that come out of order", () => {
    expect(canonicalFlat({ tokens_out: 2, tokens_in: 1 })).toBe('{"tokens_in":1,"tokens_out":2}');
    expect(canonicalFlat({ b: "x", a: "y", c: 1 })).toBe('{"a":"y","b":"x","c":1}');
    expect(canonicalFlat({ tokens_in: 1, tokens_out: 2, cost: 3 })).toBe(
      '{"cost":3,"tokens_in":1,"tokens_out":2}',
    );
    // Integer-like keys are listed first by Object.keys, in numeric order: "10" sorts before "9".
    expect(canonicalFlat({ 9: 1, 10: 2 })).toBe('{"10":2,"9":1}');
    expect(canonicalFlat(undefined)).toBe("{}");
    expect(canonicalFlat({})).toBe("{}");
  });
});
