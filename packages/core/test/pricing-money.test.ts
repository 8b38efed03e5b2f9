import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TollgateError } from "../src/errors.js";
import {
  decimalFromNumber,
  FEMTO_PER_USD,
  formatPricePerMTok,
  formatUsd,
  parsePricePerMTok,
  parseUsd,
  pricePerMTokFromNumber,
} from "../src/pricing/index.js";

/** A decimal string with up to 15 places (femto precision), possibly with trailing zeros. */
const usdString = fc
  .tuple(
    fc.bigInt({ min: 0n, max: 10n ** 12n }),
    fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 0, maxLength: 15 }),
  )
  .map(([whole, fraction]) => (fraction ? `${whole}.${fraction}` : `${whole}`));

function invalidOf(fn: () => unknown): TollgateError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError);
    expect((error as TollgateError).code).toBe("INVALID_REQUEST");
    return error as TollgateError;
  }
  throw new Error("expected INVALID_REQUEST");
}

describe("parseUsd / formatUsd", () => {
  it("uses femto-USD", () => {
    expect(parseUsd("1")).toBe(FEMTO_PER_USD);
    expect(parseUsd("0.0045")).toBe(4_500_000_000_000n);
    expect(parseUsd("0.000000000000001")).toBe(1n);
    expect(formatUsd(4_500_000_000_000n)).toBe("0.004500");
    expect(formatUsd(0n)).toBe("0.000000");
    expect(formatUsd(1n)).toBe("0.000000000000001");
    expect(formatUsd(123n * FEMTO_PER_USD)).toBe("123.000000");
    expect(formatUsd(1_234_567_800_000_000n, 0)).toBe("1.2345678");
    expect(formatUsd(2n * FEMTO_PER_USD, 0)).toBe("2");
    expect(formatUsd(-4_500_000_000_000n)).toBe("-0.004500");
    expect(formatUsd(10n ** 40n)).toBe(`1${"0".repeat(25)}.000000`);
  });

  it("accepts trailing zeros beyond 15 places but never rounds", () => {
    expect(parseUsd("0.00450000000000000000")).toBe(4_500_000_000_000n);
    const err = invalidOf(() => parseUsd("0.0000000000000001"));
    expect(err.message).toMatch(/15 decimal places/);
  });

  it("rejects what is not a plain non-negative decimal", () => {
    for (const bad of ["", "-1", "1e-3", "1E3", ".5", "5.", "+1", " 1", "1 ", "0x10", "NaN", "1,5", "١"]) {
      invalidOf(() => parseUsd(bad));
    }
    invalidOf(() => parseUsd("1".repeat(65)));
    expect(parseUsd("-1.5", { allowNegative: true })).toBe(-15n * 10n ** 14n);
    expect(invalidOf(() => parseUsd("x", { field: "values.cost" })).details).toMatchObject({
      field: "values.cost",
    });
  });

  it("formatUsd(parseUsd(s)) is s normalized; parseUsd(formatUsd(x)) is x", () => {
    fc.assert(
      fc.property(usdString, fc.integer({ min: 0, max: 15 }), (s, minDecimals) => {
        const femto = parseUsd(s);
        const out = formatUsd(femto, minDecimals);
        // Normal form: no leading zeros, no exponent, trailing zeros only down to minDecimals.
        expect(out).toMatch(/^(0|[1-9]\d*)(\.\d+)?$/);
        const decimals = out.split(".")[1] ?? "";
        expect(decimals.length).toBeGreaterThanOrEqual(minDecimals);
        if (decimals.length > minDecimals) expect(decimals.endsWith("0")).toBe(false);
        // Same value as the input: compare digit strings at a common scale.
        const [w = "", f = ""] = s.split(".");
        expect(BigInt(w + f.padEnd(15, "0"))).toBe(femto);
        expect(parseUsd(out)).toBe(femto);
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), (x) => {
        expect(parseUsd(formatUsd(x))).toBe(x);
        expect(parseUsd(formatUsd(x, 0))).toBe(x);
        expect(parseUsd(formatUsd(-x), { allowNegative: true })).toBe(-x);
      }),
    );
  });
});

describe("prices per 1M tokens", () => {
  it("uses nano-USD per 1M tokens", () => {
    expect(parsePricePerMTok("2.5")).toBe(2_500_000_000n);
    expect(parsePricePerMTok("0.01875")).toBe(18_750_000n);
    expect(parsePricePerMTok("0.000000001")).toBe(1n);
    expect(formatPricePerMTok(18_750_000n)).toBe("0.01875");
    expect(formatPricePerMTok(60_000_000_000n)).toBe("60");
    expect(formatPricePerMTok(60_000_000_000n, 2)).toBe("60.00");
    invalidOf(() => parsePricePerMTok("0.0000000001"));
    invalidOf(() => parsePricePerMTok("-1"));
    invalidOf(() => parsePricePerMTok("1000000.000000001"));
    expect(parsePricePerMTok("1000000")).toBe(10n ** 15n);
  });

  it("converts data-file numbers through their shortest decimal, exactly", () => {
    expect(pricePerMTokFromNumber(0.01875)).toBe(18_750_000n);
    expect(pricePerMTokFromNumber(0.075)).toBe(75_000_000n);
    // 0.30000000000000004 has 17 decimals: not exact at 1e-9, so refused rather than rounded.
    invalidOf(() => pricePerMTokFromNumber(0.1 + 0.2));
    expect(pricePerMTokFromNumber(1e-7)).toBe(100n);
    expect(pricePerMTokFromNumber(37.5)).toBe(37_500_000_000n);
    invalidOf(() => pricePerMTokFromNumber(1e-10));
    invalidOf(() => pricePerMTokFromNumber(Number.NaN));
    invalidOf(() => pricePerMTokFromNumber(Number.POSITIVE_INFINITY));
    invalidOf(() => pricePerMTokFromNumber(-0.5));
  });

  it("decimalFromNumber is plain notation and round-trips every finite double", () => {
    expect(decimalFromNumber(1e-7)).toBe("0.0000001");
    expect(decimalFromNumber(1.5e-10)).toBe("0.00000000015");
    expect(decimalFromNumber(1e21)).toBe("1000000000000000000000");
    expect(decimalFromNumber(1.25e22)).toBe("12500000000000000000000");
    expect(decimalFromNumber(-2.5e-8)).toBe("-0.000000025");
    expect(decimalFromNumber(0.1 + 0.2)).toBe("0.30000000000000004");
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        const s = decimalFromNumber(n);
        expect(s).toMatch(/^-?\d+(\.\d+)?$/);
        expect(Number(s)).toBe(n === 0 ? 0 : n);
      }),
    );
  });
});
