import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { copyFields } from "../src/fields.js";

const key = fc.oneof(
  fc.constantFrom("__proto__", "cost", "tokens", "tokens_in", "0", "10", "constructor", "toString"),
  fc.string({ minLength: 1, maxLength: 6 }),
);

describe("copyFields", () => {
  it("copies what a spread copies, in the same order, without the excepted field", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(key, fc.integer()), { maxLength: 8 }),
        fc.option(key, { nil: undefined }),
        fc.boolean(),
        (entries, except, fromJson) => {
          const src: Record<string, number> = {};
          for (const [k, v] of entries)
            Object.defineProperty(src, k, { value: v, enumerable: true, writable: true, configurable: true });
          const source = fromJson ? (JSON.parse(JSON.stringify(src)) as Record<string, number>) : src;
          const spread: Record<string, number> = { ...source };
          if (except !== undefined) delete spread[except];
          const copy = copyFields(source, except);
          expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
          expect(Object.entries(copy)).toEqual(Object.entries(spread));
          // A field added afterwards is a field like any other.
          copy.cost = 1;
          expect(Object.hasOwn(copy, "cost")).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("leaves inherited properties out", () => {
    const src = Object.create({ inherited: 1 }) as Record<string, number>;
    src.own = 2;
    expect(copyFields(src)).toEqual({ own: 2 });
  });
});
