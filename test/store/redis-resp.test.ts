/** The Redis limiter's RESP encoder (packages/store-redis/src/resp.ts), pinned to ioredis' own encoding. */
import fc from "fast-check";
import { Command } from "ioredis";
import { describe, expect, it } from "vitest";
import { encodeBulk, RespWriter } from "../../packages/store-redis/src/resp.js";

/** What ioredis writes for this command (its string encoding: "$" + byte length + CRLF + arg + CRLF). */
function ioredis(args: (string | number)[]): Buffer {
  const out = new Command("evalsha", args).toWritable({});
  return Buffer.isBuffer(out) ? out : Buffer.from(out);
}

/** Strings as they come: ASCII, Latin-1, other BMP characters, astral ones, lone surrogates excluded. */
const text = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.string({
    unit: fc.constantFrom("a", "é", "ÿ", "€", "😀", "{", "}", ":", "\r", "\n", "\u0000"),
    maxLength: 120,
  }),
);
const arg = fc.oneof(text, fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
/** Each argument sent as a string or number, or (strings) as a key encoded once beforehand. */
const request = fc.array(fc.tuple(arg, fc.boolean()), { maxLength: 40 });

function encode(w: RespWriter, items: readonly (readonly [string | number, boolean])[]): Buffer {
  w.begin(items.length + 1);
  w.bytes(encodeBulk("evalsha"));
  for (const [a, asKey] of items) {
    if (typeof a === "number") w.number(a);
    else if (asKey) w.bytes(encodeBulk(a));
    else w.string(a);
  }
  return w.end();
}

describe("RespWriter", () => {
  it("encodes a request byte for byte as ioredis does", () => {
    const w = new RespWriter();
    fc.assert(
      fc.property(request, (items) => {
        expect(encode(w, items).equals(ioredis(items.map(([a]) => a)))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("never writes again over a request it handed out, across full slabs and requests larger than one", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(request, fc.constant([["x".repeat(70_000), false] as [string, boolean]])), {
          minLength: 1,
          maxLength: 60,
        }),
        (requests) => {
          const w = new RespWriter();
          const views = requests.map((items) => encode(w, items));
          requests.forEach((items, i) => {
            expect(views[i]!.equals(ioredis(items.map(([a]) => a)))).toBe(true);
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});
