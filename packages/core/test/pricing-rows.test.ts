import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_UNKNOWN_MODEL_POLICY,
  decidePrice,
  eventCost,
  type ModelAlias,
  matchesModel,
  modelAliasProblems,
  normalizeModel,
  PriceBook,
  type PriceRow,
  type PriceSource,
  priceFor,
  priceRowProblems,
  resolveAlias,
  unknownModelPolicyProblems,
} from "../src/pricing/index.js";

const T = Date.UTC(2026, 5, 1); // a price change at 2026-06-01T00:00:00Z

function row(
  model: string,
  effectiveFrom: number,
  source: PriceSource,
  input: bigint,
  id?: string,
): PriceRow {
  return {
    model,
    effectiveFrom,
    source,
    input,
    output: input * 4n,
    cachedInput: input / 2n,
    id: id ?? `${source}:${model}:${effectiveFrom}`,
  };
}

describe("effective dating", () => {
  const rows = [row("gpt-4o", 0, "catalogue", 5n), row("gpt-4o", T, "catalogue", 2n)];

  it("prices an event by the row in force at its timestamp (effectiveFrom inclusive)", () => {
    expect(priceFor(rows, "gpt-4o", T - 1)?.input).toBe(5n);
    expect(priceFor(rows, "gpt-4o", T)?.input).toBe(2n);
    expect(priceFor(rows, "gpt-4o", T + 1)?.input).toBe(2n);
    expect(priceFor(rows, "gpt-4o", 0)?.input).toBe(5n);
  });

  it("has no price before the first row", () => {
    expect(priceFor([row("m", T, "override", 1n)], "m", T - 1)).toBeUndefined();
    expect(priceFor([row("m", T, "override", 1n)], "m", T)?.input).toBe(1n);
  });

  it("records the row used", () => {
    const before = eventCost({ tokens_in: 10 }, priceFor(rows, "gpt-4o", T - 1)!);
    const after = eventCost({ tokens_in: 10 }, priceFor(rows, "gpt-4o", T)!);
    expect(before.ok && before.rowId).toBe("catalogue:gpt-4o:0");
    expect(after.ok && after.rowId).toBe(`catalogue:gpt-4o:${T}`);
  });
});

describe("override precedence", () => {
  it("an override beats catalogue rows with the same or an earlier effectiveFrom", () => {
    const rows = [row("m", 0, "catalogue", 1n), row("m", T, "catalogue", 2n), row("m", T, "override", 3n)];
    expect(priceFor(rows, "m", T - 1)?.input).toBe(1n);
    expect(priceFor(rows, "m", T)?.input).toBe(3n);
    // Order in the list does not matter for different sources.
    expect(priceFor([...rows].reverse(), "m", T)?.input).toBe(3n);
    const early = [row("m", T, "catalogue", 2n), row("m", 0, "override", 9n)];
    expect(priceFor(early, "m", 5)?.input).toBe(9n);
  });

  it("a later-dated row takes over from an earlier override", () => {
    const rows = [row("m", 0, "override", 9n), row("m", T, "catalogue", 2n)];
    expect(priceFor(rows, "m", T - 1)?.input).toBe(9n);
    expect(priceFor(rows, "m", T)?.input).toBe(2n);
  });

  it("on a full tie the later row in the list wins", () => {
    const rows = [row("m", T, "override", 1n, "a"), row("m", T, "override", 2n, "b")];
    expect(priceFor(rows, "m", T)?.id).toBe("b");
  });
});

describe("model names and aliases", () => {
  const aliases: ModelAlias[] = [
    { model: "gpt-4o", match: { or: [{ equals: "gpt-4o" }, { equals: "gpt-4o-2024-08-06" }] } },
    { model: "claude-3-5-sonnet", match: { starts_with: "claude-3-5-sonnet" } },
    {
      model: "gemini-2.5-pro",
      match: { and: [{ starts_with: "gemini-2.5-pro" }, { regex: "^(?!.*-tts)" }] },
    },
  ];
  const rows = [
    row("gpt-4o", 0, "catalogue", 25n),
    row("gpt-4o-2024-05-13", 0, "catalogue", 50n),
    row("claude-3-5-sonnet", 0, "catalogue", 30n),
    row("gemini-2.5-pro", 0, "catalogue", 12n),
  ];

  it("normalizes case and surrounding space only", () => {
    expect(normalizeModel("  GPT-4o ")).toBe("gpt-4o");
    expect(priceFor(rows, "GPT-4O", 1)?.input).toBe(25n);
  });

  it("maps a name to a catalogue model only when the catalogue says so", () => {
    expect(priceFor(rows, "gpt-4o-2024-08-06", 1, aliases)?.input).toBe(25n);
    expect(priceFor(rows, "gpt-4o-2024-11-20", 1, aliases)).toBeUndefined(); // not listed: no guess
    expect(priceFor(rows, "gpt-4o-2024-05-13", 1, aliases)?.input).toBe(50n); // its own row
    expect(priceFor(rows, "claude-3-5-sonnet-20241022", 1, aliases)?.input).toBe(30n);
    expect(priceFor(rows, "gemini-2.5-pro-preview-06-05", 1, aliases)?.input).toBe(12n);
    expect(priceFor(rows, "gemini-2.5-pro-tts", 1, aliases)).toBeUndefined();
    expect(priceFor(rows, "gpt-4o-2024-08-06", 1)).toBeUndefined(); // no aliases given
    expect(resolveAlias("Claude-3-5-Sonnet-latest", aliases)).toBe("claude-3-5-sonnet");
  });

  it("exact rows come before aliases, and an override of the canonical model prices its aliases", () => {
    const withOverrides = [
      ...rows,
      row("gpt-4o", T, "override", 7n),
      row("claude-3-5-sonnet-20241022", 0, "override", 1n),
    ];
    const book = new PriceBook(withOverrides, aliases);
    expect(book.lookup("gpt-4o-2024-08-06", T)).toMatchObject({ model: "gpt-4o", via: "alias" });
    expect(book.priceFor("gpt-4o-2024-08-06", T)?.input).toBe(7n);
    expect(book.priceFor("gpt-4o-2024-08-06", T - 1)?.input).toBe(25n);
    expect(book.lookup("claude-3-5-sonnet-20241022", 0)).toMatchObject({ via: "exact" });
    expect(book.priceFor("claude-3-5-sonnet-20241022", 0)?.input).toBe(1n);
  });

  it("falls back to the alias when the exact rows are not in force yet", () => {
    const book = new PriceBook([...rows, row("gpt-4o-2024-08-06", T, "override", 3n)], aliases);
    expect(book.priceFor("gpt-4o-2024-08-06", T - 1)?.input).toBe(25n);
    expect(book.priceFor("gpt-4o-2024-08-06", T)?.input).toBe(3n);
  });

  it("matches like the catalogue: case-insensitive strings, regexes on the normalized name", () => {
    expect(matchesModel({ ends_with: "-Flash" }, "gemini-2.0-flash")).toBe(true);
    expect(matchesModel({ contains: "4O" }, "gpt-4o-mini")).toBe(true);
    expect(matchesModel({ regex: "^o[134]" }, "o3-mini")).toBe(true);
    expect(matchesModel({ or: [] }, "x")).toBe(false);
    expect(matchesModel({ and: [] }, "x")).toBe(true);
  });

  it("PriceBook answers exactly like priceFor", () => {
    const models = ["a", "b", "A", "b-2024", "c"];
    const arbRow = fc.record({
      model: fc.constantFrom(...models),
      effectiveFrom: fc.integer({ min: 0, max: 10 }),
      source: fc.constantFrom<PriceSource>("catalogue", "override"),
      input: fc.bigInt({ min: 0n, max: 100n }),
    });
    const arbAliases = fc.array(
      fc.record({
        model: fc.constantFrom(...models),
        match: fc.constantFrom({ starts_with: "b" }, { equals: "c" }),
      }),
      { maxLength: 3 },
    );
    fc.assert(
      fc.property(
        fc.array(arbRow, { maxLength: 20 }),
        arbAliases,
        fc.constantFrom(...models, "b-x", "z"),
        fc.integer({ min: -1, max: 11 }),
        (specs, aliasList, model, at) => {
          const rows = specs.map((s, i) => row(s.model, s.effectiveFrom, s.source, s.input, `r${i}`));
          expect(new PriceBook(rows, aliasList).priceFor(model, at)?.id).toBe(
            priceFor(rows, model, at, aliasList)?.id,
          );
        },
      ),
    );
  });
});

describe("validation", () => {
  it("lists every problem of a row with its path", () => {
    expect(priceRowProblems(row("m", 0, "catalogue", 1n))).toEqual([]);
    const bad = {
      ...row(" ", -1, "catalogue", -1n),
      source: "x" as PriceSource,
      id: "",
      tiers: [
        { inputTokensAbove: 10, input: 1n, output: 1n, cachedInput: 1n },
        { inputTokensAbove: 10, input: 1n, output: 10n ** 16n, cachedInput: 1n },
      ],
    };
    expect(priceRowProblems(bad).map((p) => p.path)).toEqual([
      "model",
      "effectiveFrom",
      "source",
      "id",
      "input",
      "output",
      "tiers[1].inputTokensAbove",
      "tiers[1].output",
    ]);
  });

  it("checks alias lists", () => {
    expect(modelAliasProblems([{ model: "m", match: { regex: "^a" } }])).toEqual([]);
    const bad = [
      { model: "", match: { regex: "(" } },
      { model: "m", match: { nope: "x" } },
      { model: "m", match: { equals: "a", contains: "b" } },
    ] as unknown as ModelAlias[];
    expect(modelAliasProblems(bad).map((p) => p.path)).toEqual([
      "[0].model",
      "[0].match.regex",
      "[1].match.nope",
      "[2].match",
    ]);
  });
});

describe("unknown-model policy", () => {
  const book = new PriceBook([row("gpt-4o", 0, "catalogue", 25n), row("late", T, "override", 1n)]);

  it("prices a known model with its own row whatever the policy", () => {
    for (const policy of [
      { policy: "reject" as const },
      { policy: "fallback" as const, fallbackModel: "late" },
    ]) {
      const decision = decidePrice(book, "gpt-4o", 1, policy);
      expect(decision).toMatchObject({ action: "price", fallback: false, row: { model: "gpt-4o" } });
    }
  });

  it("tokens_only by default", () => {
    expect(DEFAULT_UNKNOWN_MODEL_POLICY).toEqual({ policy: "tokens_only" });
    expect(decidePrice(book, "mystery", 1)).toEqual({ action: "tokens_only", reason: "unknown_model" });
  });

  it("reject answers INVALID_REQUEST naming dimensions.model", () => {
    const decision = decidePrice(book, "mystery", 1, { policy: "reject" });
    expect(decision.action).toBe("reject");
    if (decision.action === "reject") {
      expect(decision.error.status).toBe(400);
      expect(decision.error.details).toEqual({ field: "dimensions.model", model: "mystery" });
    }
  });

  it("fallback prices with the named model's row in force, else records tokens only", () => {
    const policy = { policy: "fallback" as const, fallbackModel: "late" };
    expect(decidePrice(book, "mystery", T)).toMatchObject({ action: "tokens_only" });
    expect(decidePrice(book, "mystery", T, policy)).toMatchObject({
      action: "price",
      fallback: true,
      row: { model: "late" },
    });
    expect(decidePrice(book, "mystery", T - 1, policy)).toEqual({
      action: "tokens_only",
      reason: "fallback_unpriced",
    });
  });

  it("validates a policy", () => {
    const knows = book.knows.bind(book);
    expect(unknownModelPolicyProblems({ policy: "tokens_only" })).toEqual([]);
    expect(unknownModelPolicyProblems({ policy: "fallback", fallbackModel: "gpt-4o" }, knows)).toEqual([]);
    expect(unknownModelPolicyProblems({ policy: "fallback" }).map((p) => p.path)).toEqual(["fallbackModel"]);
    expect(unknownModelPolicyProblems({ policy: "fallback", fallbackModel: "nope" }, knows)).toHaveLength(1);
    expect(unknownModelPolicyProblems({ policy: "reject", fallbackModel: "gpt-4o" })).toHaveLength(1);
    expect(unknownModelPolicyProblems({ policy: "sometimes" as "reject" }).map((p) => p.path)).toEqual([
      "policy",
    ]);
  });
});
