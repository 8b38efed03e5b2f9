import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  eventCost,
  eventCostPico,
  formatUsd,
  hasTokenValues,
  PriceBook,
  type PriceRow,
  parsePricePerMTok,
  type TokenValues,
} from "../src/pricing/index.js";

/**
 * The independent table from the issue: USD per 1K tokens, [input, output]. Expected costs below are
 * computed from these strings with their own BigInt arithmetic (at the table's own scale), never
 * through the pricing module's units.
 */
const TABLE_PER_1K: Record<string, readonly [string, string]> = {
  "gpt-4": ["0.03", "0.06"],
  "gpt-4o": ["0.005", "0.015"],
  "gpt-3.5-turbo": ["0.0005", "0.0015"],
  "claude-3-opus": ["0.015", "0.075"],
  "claude-3.5-sonnet": ["0.003", "0.015"],
  "claude-3.5-haiku": ["0.001", "0.005"],
  "gemini-1.5-pro": ["0.00125", "0.005"],
  "gemini-1.5-flash": ["0.000075", "0.0003"],
};
const MODELS = Object.keys(TABLE_PER_1K);

/** "0.000075" per 1K → "0.075" per 1M: move the decimal point three places, as strings. */
function per1KToPer1M(s: string): string {
  const [whole = "", fraction = ""] = s.split(".");
  const padded = fraction.padEnd(3, "0");
  const newWhole = (whole + padded.slice(0, 3)).replace(/^0+(?=\d)/, "");
  const newFraction = padded.slice(3).replace(/0+$/, "");
  return newFraction ? `${newWhole}.${newFraction}` : newWhole;
}

/** A decimal string as digits × 10^-scale. */
function decimal(s: string): { digits: bigint; scale: number } {
  const [whole = "", fraction = ""] = s.split(".");
  return { digits: BigInt(whole + fraction), scale: fraction.length };
}

/** Exact USD as num × 10^-EXPECTED_SCALE; the table has at most 6 decimals per 1K, so 9 per token. */
const EXPECTED_SCALE = 9;
function expectedUsd(model: string, tokensIn: number, tokensOut: number): bigint {
  const [pin, pout] = TABLE_PER_1K[model]!;
  const term = (tokens: number, price: string) => {
    const { digits, scale } = decimal(price);
    // tokens × digits × 10^-scale / 1000 = tokens × digits × 10^(EXPECTED_SCALE - scale - 3) × 10^-EXPECTED_SCALE
    return BigInt(tokens) * digits * 10n ** BigInt(EXPECTED_SCALE - scale - 3);
  };
  return term(tokensIn, pin) + term(tokensOut, pout);
}

/** Independent rendering of num × 10^-scale with at least 6 decimals, trailing zeros trimmed. */
function renderUsd(num: bigint, scale: number): string {
  const s = num.toString().padStart(scale + 1, "0");
  let fraction = s.slice(s.length - scale).replace(/0+$/, "");
  fraction = fraction.padEnd(6, "0");
  return `${s.slice(0, s.length - scale)}.${fraction}`;
}

/** femto-USD equals num × 10^-scale USD, by cross-multiplication (no shared unit). */
function sameAmount(femto: bigint, num: bigint, scale: number): boolean {
  return femto * 10n ** BigInt(scale) === num * 10n ** 15n;
}

const MONTH_START = Date.UTC(2026, 10, 1); // 2026-11-01
const MONTH_END = Date.UTC(2026, 11, 1); // 2026-12-01

function tableRows(): PriceRow[] {
  return MODELS.map((model) => {
    const [pin, pout] = TABLE_PER_1K[model]!;
    const input = parsePricePerMTok(per1KToPer1M(pin));
    return {
      model,
      effectiveFrom: MONTH_START,
      input,
      output: parsePricePerMTok(per1KToPer1M(pout)),
      cachedInput: input,
      source: "override",
      id: `ovr_${model}`,
    };
  });
}

/** Catalogue rows with other prices for the same models: the overrides must win over them. */
function decoyRows(): PriceRow[] {
  return MODELS.map((model, i) => ({
    model,
    effectiveFrom: 0,
    input: BigInt(i + 7) * 1_000_000_007n,
    output: BigInt(i + 3) * 999_999_937n,
    cachedInput: 1n,
    source: "catalogue",
    id: `cat_${model}`,
  }));
}

const book = new PriceBook([...decoyRows(), ...tableRows()]);
const tokens = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const smallTokens = fc.integer({ min: 0, max: 2_000_000 });

describe("the independent price table", () => {
  it("converts per 1K to per 1M by moving the point", () => {
    expect(per1KToPer1M("0.03")).toBe("30");
    expect(per1KToPer1M("0.000075")).toBe("0.075");
    expect(per1KToPer1M("0.00125")).toBe("1.25");
    expect(per1KToPer1M("0.0003")).toBe("0.3");
    expect(per1KToPer1M("12.5")).toBe("12500");
  });

  it("prices a known event to the last digit", () => {
    const row = book.priceFor("gpt-4o", MONTH_START + 1)!;
    expect(row.id).toBe("ovr_gpt-4o");
    const result = eventCost({ tokens_in: 1200, tokens_out: 300 }, row);
    expect(result.ok && formatUsd(result.cost)).toBe("0.010500");
    const flash = eventCost({ tokens_in: 1, tokens_out: 1 }, book.priceFor("gemini-1.5-flash", MONTH_START)!);
    // 1 × 0.000075/1000 + 1 × 0.0003/1000 = 0.000000375
    expect(flash.ok && formatUsd(flash.cost)).toBe("0.000000375");
  });

  it("every recorded event costs exactly tokens × price, for any token counts", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...MODELS),
        tokens,
        tokens,
        fc.integer({ min: MONTH_START, max: MONTH_END - 1 }),
        (model, tokensIn, tokensOut, at) => {
          const row = book.priceFor(model, at)!;
          expect(row.source).toBe("override");
          const result = eventCost({ tokens_in: tokensIn, tokens_out: tokensOut }, row);
          if (!result.ok) throw result.error;
          expect(result.rowId).toBe(`ovr_${model}`);
          const expected = expectedUsd(model, tokensIn, tokensOut);
          expect(sameAmount(result.cost, expected, EXPECTED_SCALE)).toBe(true);
          expect(formatUsd(result.cost)).toBe(renderUsd(expected, EXPECTED_SCALE));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("a month of events sums to the independently computed total", () => {
    const event = fc.record({
      model: fc.constantFrom(...MODELS),
      tokensIn: smallTokens,
      tokensOut: smallTokens,
      at: fc.integer({ min: MONTH_START, max: MONTH_END - 1 }),
    });
    fc.assert(
      fc.property(fc.array(event, { minLength: 1_000, maxLength: 3_000 }), (events) => {
        let total = 0n;
        let expected = 0n;
        const perModel = new Map<string, bigint>();
        for (const e of events) {
          const result = eventCost(
            { tokens_in: e.tokensIn, tokens_out: e.tokensOut },
            book.priceFor(e.model, e.at)!,
          );
          if (!result.ok) throw result.error;
          total += result.cost;
          perModel.set(e.model, (perModel.get(e.model) ?? 0n) + result.cost);
          expected += expectedUsd(e.model, e.tokensIn, e.tokensOut);
        }
        expect(sameAmount(total, expected, EXPECTED_SCALE)).toBe(true);
        expect(formatUsd(total)).toBe(renderUsd(expected, EXPECTED_SCALE));
        // Grouping does not change the sum.
        expect([...perModel.values()].reduce((a, b) => a + b, 0n)).toBe(total);
      }),
      { numRuns: 10 },
    );
  });

  it("uses the catalogue row before the override takes effect", () => {
    const row = book.priceFor("gpt-4", MONTH_START - 1)!;
    expect(row.id).toBe("cat_gpt-4");
  });
});

/** A random row with rates up to $1,000 per 1M tokens. */
const rate = fc.bigInt({ min: 0n, max: 1_000n * 10n ** 9n });
const arbRow = fc
  .record({ input: rate, output: rate, cachedInput: rate, reasoning: fc.option(rate, { nil: undefined }) })
  .map(
    (r): PriceRow => ({
      model: "m",
      effectiveFrom: 0,
      source: "catalogue",
      id: "row",
      input: r.input,
      output: r.output,
      cachedInput: r.cachedInput,
      ...(r.reasoning === undefined ? {} : { reasoning: r.reasoning }),
    }),
  );
/** tokens_in ≥ cached, tokens_out ≥ reasoning. */
const arbValues = fc.tuple(tokens, tokens, tokens, tokens).map(
  ([a, b, c, d]): Required<TokenValues> => ({
    tokens_in: Math.max(a, b),
    cached_tokens_in: Math.min(a, b),
    tokens_out: Math.max(c, d),
    reasoning_tokens: Math.min(c, d),
  }),
);

function costOf(values: TokenValues, row: PriceRow): bigint {
  const result = eventCost(values, row);
  if (!result.ok) throw result.error;
  return result.cost;
}

describe("cached and reasoning tokens", () => {
  it("are priced as their own kinds, each token once", () => {
    fc.assert(
      fc.property(arbValues, arbRow, (v, row) => {
        const result = eventCost(v, row);
        if (!result.ok) throw result.error;
        const b = BigInt;
        const expected =
          b(v.tokens_in - v.cached_tokens_in) * row.input +
          b(v.cached_tokens_in) * row.cachedInput +
          b(v.tokens_out - v.reasoning_tokens) * row.output +
          b(v.reasoning_tokens) * (row.reasoning ?? row.output);
        expect(result.cost).toBe(expected);
        const { input, cachedInput, output, reasoning } = result.parts;
        expect(input + cachedInput + output + reasoning).toBe(result.cost);
      }),
    );
  });

  it("a cache discount never costs more than pricing every input token as input", () => {
    fc.assert(
      fc.property(arbValues, arbRow, (v, row) => {
        fc.pre(row.cachedInput <= row.input);
        const split = costOf(v, row);
        const allInput = costOf({ ...v, cached_tokens_in: 0 }, row);
        expect(split <= allInput).toBe(true);
        expect(allInput - split).toBe(BigInt(v.cached_tokens_in) * (row.input - row.cachedInput));
      }),
    );
  });

  it("reasoning tokens without a reasoning rate cost exactly what output tokens cost", () => {
    fc.assert(
      fc.property(arbValues, arbRow, (v, row) => {
        const { reasoning: _, ...noReasoningRate } = row;
        expect(costOf(v, noReasoningRate)).toBe(costOf({ ...v, reasoning_tokens: 0 }, noReasoningRate));
      }),
    );
  });

  it("all-cached input costs only the cached rate", () => {
    const row: PriceRow = {
      model: "m",
      effectiveFrom: 0,
      source: "catalogue",
      id: "r",
      input: 2_500_000_000n,
      output: 10_000_000_000n,
      cachedInput: 1_250_000_000n,
    };
    const result = eventCost({ tokens_in: 1000, cached_tokens_in: 1000 }, row);
    expect(result.ok && formatUsd(result.cost)).toBe("0.001250");
    expect(result.ok && result.parts.input).toBe(0n);
  });

  it("rejects cached > tokens_in, reasoning > tokens_out and bad counts, naming the field", () => {
    const row = tableRows()[0]!;
    const cases: [TokenValues, string][] = [
      [{ tokens_in: 10, cached_tokens_in: 11 }, "values.cached_tokens_in"],
      [{ cached_tokens_in: 1 }, "values.cached_tokens_in"],
      [{ tokens_out: 5, reasoning_tokens: 6 }, "values.reasoning_tokens"],
      [{ tokens_in: -1 }, "values.tokens_in"],
      [{ tokens_in: 1.5 }, "values.tokens_in"],
      [{ tokens_out: Number.MAX_SAFE_INTEGER + 1 }, "values.tokens_out"],
      [{ tokens_out: Number.NaN }, "values.tokens_out"],
      [{ reasoning_tokens: Number.POSITIVE_INFINITY }, "values.reasoning_tokens"],
    ];
    for (const [values, field] of cases) {
      const result = eventCost(values, row);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.code).toBe("INVALID_REQUEST");
        expect(result.error.details).toMatchObject({ field });
      }
    }
  });

  it("absent values count as zero; other values are ignored", () => {
    const row = tableRows()[0]!;
    expect(costOf({}, row)).toBe(0n);
    const values: Record<string, number> = { tokens_in: 1000, steps: 3 };
    expect(costOf(values, row)).toBe(1000n * row.input);
    expect(hasTokenValues(values)).toBe(true);
    expect(hasTokenValues({ steps: 1 })).toBe(false);
    expect(hasTokenValues({ tokens_out: 0 })).toBe(true);
  });
});

describe("long-context tiers", () => {
  const row: PriceRow = {
    model: "long",
    effectiveFrom: 0,
    source: "catalogue",
    id: "long@base",
    input: 3_000_000_000n,
    output: 15_000_000_000n,
    cachedInput: 300_000_000n,
    tiers: [
      {
        inputTokensAbove: 200_000,
        input: 6_000_000_000n,
        output: 22_500_000_000n,
        cachedInput: 600_000_000n,
      },
      {
        inputTokensAbove: 1_000_000,
        input: 9_000_000_000n,
        output: 30_000_000_000n,
        cachedInput: 900_000_000n,
      },
    ],
  };

  it("applies a tier only strictly above its threshold, to every kind", () => {
    const at = (tokensIn: number) => {
      const result = eventCost({ tokens_in: tokensIn, cached_tokens_in: 1000, tokens_out: 1000 }, row);
      if (!result.ok) throw result.error;
      return result;
    };
    expect(at(200_000).tier).toBeUndefined();
    expect(at(200_000).cost).toBe(199_000n * 3_000_000_000n + 1000n * 300_000_000n + 1000n * 15_000_000_000n);
    expect(at(200_001).tier).toBe(200_000);
    expect(at(200_001).cost).toBe(199_001n * 6_000_000_000n + 1000n * 600_000_000n + 1000n * 22_500_000_000n);
    expect(at(1_000_001).tier).toBe(1_000_000);
    expect(at(1_000_001).parts.output).toBe(1000n * 30_000_000_000n);
  });
});

describe("eventCostPico (the Number path)", () => {
  /** Rates as the catalogue and putPrice allow: whole pico-USD per token, some huge. */
  const femtoRate = fc.oneof(
    fc.bigInt({ min: 0n, max: 100_000_000n }).map((p) => p * 1000n),
    fc.bigInt({ min: 0n, max: 10n ** 20n }).map((p) => p * 1000n),
    fc.bigInt({ min: 0n, max: 10n ** 9n }), // not whole pico: the Number path must decline
  );
  const rates = fc.record({
    input: femtoRate,
    output: femtoRate,
    cachedInput: femtoRate,
    reasoning: fc.option(femtoRate, { nil: undefined }),
  });
  const tokens = fc.oneof(
    fc.integer({ min: 0, max: 2_000_000 }),
    fc.maxSafeNat(),
    fc.integer({ min: -5, max: 5 }),
  );
  const row = fc
    .record({
      base: rates,
      tiers: fc.option(
        fc.array(fc.record({ above: fc.integer({ min: 0, max: 300_000 }), r: rates }), { maxLength: 2 }),
        { nil: undefined },
      ),
    })
    .map(
      ({ base, tiers }) =>
        ({
          id: "r",
          model: "m",
          effectiveFrom: 0,
          source: "catalogue",
          ...base,
          ...(tiers
            ? {
                tiers: [...new Map(tiers.map((t) => [t.above, t])).values()]
                  .sort((a, b) => a.above - b.above)
                  .map((t) => ({ inputTokensAbove: t.above, ...t.r })),
              }
            : {}),
        }) as unknown as PriceRow,
    );

  it("equals eventCost's femto-USD / 1000 whenever it answers", () => {
    fc.assert(
      fc.property(
        row,
        fc.record({
          tokens_in: tokens,
          tokens_out: tokens,
          cached_tokens_in: tokens,
          reasoning_tokens: tokens,
        }),
        (r, v) => {
          const fast = eventCostPico(v, r);
          const exact = eventCost(v, r);
          if (fast === null) return;
          expect(exact.ok).toBe(true);
          if (!exact.ok) return;
          expect(exact.cost % 1000n).toBe(0n);
          expect(BigInt(fast)).toBe(exact.cost / 1000n);
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it("answers for a catalogue-sized event and declines what a Number cannot hold exactly", () => {
    const r = {
      id: "r",
      model: "m",
      effectiveFrom: 0,
      input: 2_500_000n,
      output: 10_000_000n,
      cachedInput: 1_250_000n,
    } as unknown as PriceRow;
    expect(eventCostPico({ tokens_in: 12_000, tokens_out: 800, cached_tokens_in: 2_000 }, r)).toBe(
      10_000 * 2_500 + 2_000 * 1_250 + 800 * 10_000,
    );
    expect(eventCostPico({ tokens_in: Number.MAX_SAFE_INTEGER }, r)).toBeNull();
    expect(eventCostPico({ tokens_in: 10, cached_tokens_in: 11 }, r)).toBeNull();
  });
});
