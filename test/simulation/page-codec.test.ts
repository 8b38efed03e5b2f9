// The columns the SQLite store's reader thread sends pages in (packages/store-sqlite/src/page-codec.js):
// decoding gives back the events pageEvents builds from the same rows, also when the tables are full
// (dimensions unique per event), for values that are not plain numbers, and across pages.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createPageDecoder, createPageEncoder } from "../../packages/store-sqlite/src/page-codec.js";

type RawRow = [number, string, string, string, number, string, string, string | null];

/** What visitRows makes of a row (store.ts). */
function expected(row: RawRow) {
  const [seq, id, type, customer, ts, vals, dims, priceRow] = row;
  const event: Record<string, unknown> = {
    id,
    type,
    customer,
    timestamp: ts,
    values: JSON.parse(vals),
    dimensions: JSON.parse(dims),
  };
  if (priceRow !== null) event.priceRow = priceRow;
  return { event, seq };
}

const valuesArb = fc.oneof(
  fc.dictionary(fc.constantFrom("tokens", "tokens_in", "tokens_out", "cost", "__proto__"), fc.maxSafeNat()),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.maxSafeNat(), fc.string({ maxLength: 4 }))),
);
const rowArb = fc.tuple(
  fc.string({ maxLength: 12 }),
  fc.constantFrom("llm", "embedding", "tool"),
  fc.constantFrom("a", "b", "c", "ünïcode\n"),
  fc.integer({ min: 0, max: 2 ** 45 }),
  valuesArb,
  fc.dictionary(fc.constantFrom("model", "region", "key"), fc.string({ maxLength: 5 })),
  fc.option(fc.constantFrom("cat:gpt-4o", "ws:x"), { nil: null }),
);

describe("page codec", () => {
  it("decodes what pageEvents would build, page after page, with full tables too", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(rowArb, { maxLength: 30 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom(1, 3, 50_000),
        (pages, tableMax) => {
          const encoder = createPageEncoder(tableMax);
          const decoder = createPageDecoder();
          let seq = 0;
          for (const page of pages) {
            const rows: RawRow[] = page.map(([id, type, customer, ts, values, dims, priceRow]) => [
              ++seq,
              id,
              type,
              customer,
              ts,
              JSON.stringify(values),
              JSON.stringify(dims),
              priceRow,
            ]);
            // Through structured clone, as postMessage hands it over.
            const { message } = encoder.encode(rows, 99);
            const decoded = decoder.decode(structuredClone(message));
            expect(decoded.asOfSeq).toBe(99);
            expect(decoded.events).toEqual(rows.map(expected));
            for (const e of decoded.events)
              expect(Object.getPrototypeOf(e.event.values)).toBe(Object.prototype);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
