import { readFileSync } from "node:fs";
import { calcPrice, findProvider, type ModelPrice, type Provider } from "@pydantic/genai-prices";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  eventCost,
  FEMTO_PER_USD,
  formatPricePerMTok,
  PriceBook,
  type PriceRow,
  priceRowProblems,
} from "../../core/src/pricing/index.js";
import { buildCatalogue, CATALOGUE_PROVIDERS, loadCatalogue } from "../src/prices/catalogue.js";

const catalogue = loadCatalogue();
const book = new PriceBook(catalogue.rows, catalogue.aliases);
const providers = new Map<string, Provider>(
  CATALOGUE_PROVIDERS.map((id) => [id, findProvider({ providerId: id })!]),
);

/** The data's prices for a row: the unconstrained entry for effectiveFrom 0, else the start_date entry. */
function dataPrices(row: PriceRow): ModelPrice {
  const model = providers.get(row.provider!)!.models.find((m) => m.id === row.model)!;
  if (!Array.isArray(model.prices)) return model.prices;
  const entry =
    row.effectiveFrom === 0
      ? model.prices.find((p) => p.constraint === undefined)
      : model.prices.find(
          (p) =>
            p.constraint?.type === "start_date" &&
            Date.parse(`${p.constraint.start_date}T00:00:00Z`) === row.effectiveFrom,
        );
  return entry!.prices;
}

/** A price value as the data writes it (base of a tiered price, or price of the tier in force). */
function written(value: ModelPrice[string], above?: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return String(value);
  let price = value.base;
  for (const tier of value.tiers) if (above !== undefined && tier.start <= above) price = tier.price;
  return String(price);
}

describe("price catalogue from @pydantic/genai-prices", () => {
  it("records the package name and the installed version as its source", () => {
    const pkg = JSON.parse(
      readFileSync(
        new URL("../../../node_modules/@pydantic/genai-prices/package.json", import.meta.url),
        "utf8",
      ),
    ) as { name: string; version: string };
    expect(catalogue.source).toEqual({ package: "@pydantic/genai-prices", version: pkg.version });
    expect(catalogue.rows.every((r) => r.id.startsWith(`@pydantic/genai-prices@${pkg.version}:`))).toBe(true);
    expect(new Set(catalogue.rows.map((r) => r.id)).size).toBe(catalogue.rows.length);
  });

  it("covers current OpenAI, Anthropic and Google models with positive prices", () => {
    const count = (provider: string) => catalogue.rows.filter((r) => r.provider === provider).length;
    expect(count("openai")).toBeGreaterThanOrEqual(50);
    expect(count("anthropic")).toBeGreaterThanOrEqual(15);
    expect(count("google")).toBeGreaterThanOrEqual(25);
    for (const model of [
      "gpt-4o",
      "gpt-4o-mini",
      "gpt-4.1",
      "o3",
      "claude-3-5-sonnet",
      "claude-sonnet-4-0",
      "gemini-1.5-flash",
      "gemini-2.5-pro",
      "gemini-2.0-flash",
    ]) {
      const row = book.priceFor(model, Date.UTC(2026, 0, 1));
      expect(row, model).toBeDefined();
      expect(row!.input > 0n && row!.output > 0n, model).toBe(true);
      expect(row!.source).toBe("catalogue");
    }
  });

  it("every row is valid and exact: formatting reproduces the data's decimal", () => {
    for (const row of catalogue.rows) {
      expect(priceRowProblems(row), row.id).toEqual([]);
      const prices = dataPrices(row);
      const check = (r: Pick<PriceRow, "input" | "output" | "cachedInput">, above?: number) => {
        const input = written(prices.input_mtok, above)!;
        expect(formatPricePerMTok(r.input), row.id).toBe(input);
        expect(formatPricePerMTok(r.output), row.id).toBe(written(prices.output_mtok, above) ?? "0");
        expect(formatPricePerMTok(r.cachedInput), row.id).toBe(
          written(prices.cache_read_mtok, above) ?? input,
        );
      };
      check(row);
      for (const tier of row.tiers ?? []) check(tier, tier.inputTokensAbove);
      expect(row.reasoning).toBeUndefined();
    }
  });

  it("gives dated prices their own effective-dated rows", () => {
    const o3 = catalogue.rows.filter((r) => r.model === "o3");
    expect(o3.map((r) => r.effectiveFrom)).toEqual([0, Date.UTC(2025, 5, 10)]);
    expect(formatPricePerMTok(book.priceFor("o3", Date.UTC(2025, 5, 10) - 1)!.input)).toBe("10");
    expect(formatPricePerMTok(book.priceFor("o3", Date.UTC(2025, 5, 10))!.input)).toBe("2");
  });

  it("keeps long-context tiers", () => {
    const row = book.priceFor("claude-sonnet-4-5", 0)!;
    expect(row.tiers?.map((t) => t.inputTokensAbove)).toEqual([200_000]);
    expect(formatPricePerMTok(row.tiers![0]!.input)).toBe("6");
  });

  it("resolves the data's other names for a model", () => {
    const at = Date.UTC(2026, 0, 1);
    expect(book.lookup("gpt-4o-2024-08-06", at)).toMatchObject({ model: "gpt-4o", via: "alias" });
    expect(book.lookup("claude-3-5-sonnet-20241022", at)?.model).toBe("claude-3-5-sonnet");
    expect(book.lookup("claude-sonnet-4-20250514", at)?.model).toBe("claude-sonnet-4-0");
    expect(book.lookup("gemini-1.5-flash-002", at)?.model).toBe("gemini-1.5-flash");
    expect(book.lookup("gpt-4o-2024-05-13", at)).toMatchObject({ model: "gpt-4o-2024-05-13", via: "exact" });
    expect(book.lookup("not-a-model", at)).toBeUndefined();
  });

  it("leaves Google's copies of Claude models to Anthropic and notes what it skips", () => {
    expect(catalogue.rows.some((r) => r.provider === "google" && r.model.startsWith("claude"))).toBe(false);
    expect(book.priceFor("claude-3-5-sonnet", 0)?.provider).toBe("anthropic");
    expect(catalogue.skipped.some((s) => s.model === "whisper-1")).toBe(true);
    expect(catalogue.skipped.every((s) => !/decimal places|not exact/.test(s.note))).toBe(true);
    expect(catalogue.ignoredPriceKeys).toContain("cache_write_mtok");
  });

  it("prices like the package itself (differential against calcPrice)", () => {
    const compared = new Set<string>();
    const models = [...new Set(catalogue.rows.map((r) => r.model))];
    const instants = [
      0,
      ...catalogue.rows
        .filter((r) => r.effectiveFrom > 0)
        .flatMap((r) => [r.effectiveFrom - 1, r.effectiveFrom]),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...models),
        fc.constantFrom(...instants),
        fc.integer({ min: 0, max: 2_000_000 }),
        fc.integer({ min: 0, max: 2_000_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        (model, at, tokensIn, cachedRaw, tokensOut) => {
          const ours = book.priceFor(model, at)!;
          const cached = Math.min(cachedRaw, tokensIn);
          const theirs = calcPrice(
            { input_tokens: tokensIn, cache_read_tokens: cached, output_tokens: tokensOut },
            model,
            {
              providerId: ours.provider!,
              timestamp: new Date(at),
            },
          );
          // The package matches names by rule, so an id can resolve to an earlier model there; compare like with like.
          if (theirs === null || theirs.model.id !== model) return;
          compared.add(model);
          const result = eventCost(
            { tokens_in: tokensIn, cached_tokens_in: cached, tokens_out: tokensOut },
            ours,
          );
          if (!result.ok) throw result.error;
          const usd = Number(result.cost) / Number(FEMTO_PER_USD);
          expect(Math.abs(usd - theirs.total_price)).toBeLessThanOrEqual(
            1e-12 * Math.max(1, theirs.total_price),
          );
        },
      ),
      { numRuns: 3_000 },
    );
    // All but the few ids the package itself resolves to another model (e.g. "ft:gpt-4o").
    expect(compared.size).toBeGreaterThanOrEqual(models.length - 5);
  });

  it("skips what it cannot price exactly instead of rounding", () => {
    const provider = {
      id: "acme",
      name: "Acme",
      api_pattern: "",
      models: [
        { id: "fine", match: { equals: "fine" }, prices: { input_mtok: 1, output_mtok: 2 } },
        { id: "too-fine", match: { equals: "too-fine" }, prices: { input_mtok: 1e-10, output_mtok: 2 } },
        { id: "audio", match: { equals: "audio" }, prices: { audio_hours: 0.36 } },
        {
          id: "offpeak",
          match: { equals: "offpeak" },
          prices: [
            { prices: { input_mtok: 1, output_mtok: 2 } },
            {
              constraint: { type: "time_of_date", start_time: "16:30:00Z", end_time: "00:30:00Z" },
              prices: { input_mtok: 0.5, output_mtok: 1 },
            },
          ],
        },
      ],
    } as unknown as Provider;
    const built = buildCatalogue([provider], { package: "p", version: "1" });
    expect(built.rows.map((r) => r.id)).toEqual(["p@1:acme:fine:base", "p@1:acme:offpeak:base"]);
    expect(built.skipped.map((s) => s.model)).toEqual(["too-fine", "audio", "offpeak"]);
  });
});
