/**
 * The built-in price catalogue: token prices of current models, read from the price data bundled in
 * the npm package @pydantic/genai-prices (maintained upstream, works offline; never typed by hand).
 *
 * What is taken from the data, and how (see also packages/core/src/pricing/README.md):
 * - providers openai, anthropic and google, in that order. A model is taken from the provider whose
 *   `model_match` claims it: Google's Vertex copies of Claude models are left to Anthropic.
 * - `input_mtok` → input, `output_mtok` → output, `cache_read_mtok` → cachedInput (absent: the input
 *   price, i.e. no cache discount, which is how the package itself prices cache reads then).
 *   A model without `input_mtok` (priced per hour of audio, or `{}`) has no row: the unknown-model
 *   policy decides. A model without `output_mtok` (embeddings) has output 0, as the data says.
 *   Every other key (cache writes, audio/image/video tokens, web searches) is not a Tollgate token
 *   kind and is ignored; those tokens, if reported inside tokens_in/tokens_out, are priced as text.
 * - Tiered prices (`{base, tiers: [{start, price}]}`) become the row's base rates plus `tiers`: when
 *   tokens_in > start, the whole event is priced at that tier, as the package does.
 * - Conditional prices: the unconstrained entry is the base row (effectiveFrom 0) and each
 *   `start_date` entry a row effective from that date 00:00 UTC. `time_of_date` entries (off-peak
 *   discounts) cannot be expressed as effective dates and are skipped, with a note.
 * - Every number is converted exactly (its shortest decimal, at 1e-9 USD per 1M tokens); a model
 *   with a price that is not exact at that precision is skipped with a note, never rounded.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  type ConditionalPrice,
  findProvider,
  type ModelInfo,
  type ModelPrice,
  type Provider,
} from "@pydantic/genai-prices";
import {
  type ModelAlias,
  type ModelMatch,
  matchesModel,
  modelAliasProblems,
  normalizeModel,
  type PriceRates,
  type PriceRow,
  type PriceTier,
  pricePerMTokFromNumber,
  priceRowProblems,
} from "@tollgate/core";

export const CATALOGUE_PACKAGE = "@pydantic/genai-prices";

/** Providers read from the data, in order of precedence for model ownership. */
export const CATALOGUE_PROVIDERS = ["openai", "anthropic", "google"] as const;

export interface CatalogueSource {
  package: string;
  version: string;
}

/** Why a model (or one of its dated prices) has no row. */
export interface CatalogueNote {
  provider: string;
  model: string;
  note: string;
}

export interface Catalogue {
  /** One row per model and effective date, ids `<package>@<version>:<provider>:<model>:<base|YYYY-MM-DD>`. */
  rows: PriceRow[];
  /** The data's other names for each model (dated snapshots, Vertex names), first match wins. */
  aliases: ModelAlias[];
  source: CatalogueSource;
  skipped: CatalogueNote[];
  /** Price keys present in the data that Tollgate does not price (cache writes, audio, …). */
  ignoredPriceKeys: string[];
}

const tokenKeys = new Set(["input_mtok", "output_mtok", "cache_read_mtok"]);

type PriceValue = ModelPrice[string];

interface Tiered {
  base: number;
  tiers: { start: number; price: number }[];
}

function isTiered(value: PriceValue): value is Tiered {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof value.base === "number" &&
    Array.isArray(value.tiers)
  );
}

/** The price of one key for an event whose tokens_in falls in the tier starting above `above`. */
function priceAt(value: PriceValue, above: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return value;
  if (!isTiered(value)) throw new Error("unrecognised price value");
  let price = value.base;
  if (above !== undefined) {
    for (const tier of value.tiers) if (tier.start <= above) price = tier.price;
  }
  return price;
}

function ratesAt(prices: ModelPrice, above: number | undefined, path: string): PriceRates {
  const input = priceAt(prices.input_mtok, above);
  if (input === undefined) throw new Error("no input_mtok");
  const output = priceAt(prices.output_mtok, above) ?? 0;
  const cached = priceAt(prices.cache_read_mtok, above) ?? input;
  return {
    input: pricePerMTokFromNumber(input, `${path}.input_mtok`),
    output: pricePerMTokFromNumber(output, `${path}.output_mtok`),
    cachedInput: pricePerMTokFromNumber(cached, `${path}.cache_read_mtok`),
  };
}

function ratesOf(prices: ModelPrice, path: string): PriceRates & { tiers?: PriceTier[] } {
  const starts = new Set<number>();
  for (const key of tokenKeys) {
    const value = prices[key];
    if (value !== undefined && typeof value !== "number") {
      if (!isTiered(value)) throw new Error(`unrecognised price value for ${key}`);
      for (const tier of value.tiers) {
        if (!Number.isSafeInteger(tier.start) || tier.start < 0) throw new Error(`bad tier start for ${key}`);
        starts.add(tier.start);
      }
    }
  }
  const base = ratesAt(prices, undefined, path);
  if (starts.size === 0) return base;
  const tiers = [...starts]
    .sort((a, b) => a - b)
    .map((start) => ({ inputTokensAbove: start, ...ratesAt(prices, start, path) }));
  return { ...base, tiers };
}

function parseStartDate(date: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(ms).toISOString().startsWith(date) ? ms : undefined;
}

/** The model's prices as (effectiveFrom, prices) entries, oldest first; notes what cannot be used. */
function datedPrices(
  model: ModelInfo,
  note: (text: string) => void,
): { effectiveFrom: number; label: string; prices: ModelPrice }[] | undefined {
  if (!Array.isArray(model.prices)) return [{ effectiveFrom: 0, label: "base", prices: model.prices }];
  const entries: ConditionalPrice[] = model.prices;
  const [first, ...rest] = entries;
  if (!first || first.constraint !== undefined) {
    note("conditional prices without an unconstrained first entry");
    return undefined;
  }
  const out = [{ effectiveFrom: 0, label: "base", prices: first.prices }];
  for (const entry of rest) {
    const c = entry.constraint;
    if (c?.type === "time_of_date") {
      note(`time-of-day price ${c.start_time}–${c.end_time} skipped (not an effective date)`);
      continue;
    }
    const from = c?.type === "start_date" ? parseStartDate(c.start_date) : undefined;
    const last = out[out.length - 1]!;
    if (c?.type !== "start_date" || from === undefined || from <= last.effectiveFrom) {
      note(`conditional price ${JSON.stringify(c)} is not an increasing start date; model skipped`);
      return undefined;
    }
    out.push({ effectiveFrom: from, label: c.start_date, prices: entry.prices });
  }
  return out;
}

/**
 * Builds the catalogue from provider data. Pure apart from its input: `loadCatalogue` feeds it the
 * package's bundled data; tests may feed it synthetic providers.
 */
export function buildCatalogue(providers: readonly Provider[], source: CatalogueSource): Catalogue {
  const rows: PriceRow[] = [];
  const aliases: ModelAlias[] = [];
  const skipped: CatalogueNote[] = [];
  const ignored = new Set<string>();
  const seen = new Set<string>();
  providers.forEach((provider, p) => {
    for (const model of provider.models) {
      const key = normalizeModel(model.id);
      const note = (text: string) => skipped.push({ provider: provider.id, model: model.id, note: text });
      const owner = providers
        .slice(0, p)
        .find((earlier) => earlier.model_match && matchesModel(earlier.model_match as ModelMatch, key));
      if (owner) {
        note(`left to provider ${owner.id}, whose models it matches`);
        continue;
      }
      if (seen.has(key)) {
        note("duplicate model id; the first provider's row is kept");
        continue;
      }
      const dated = datedPrices(model, note);
      if (!dated) continue;
      const modelRows: PriceRow[] = [];
      try {
        for (const { effectiveFrom, label, prices } of dated) {
          for (const k of Object.keys(prices)) if (!tokenKeys.has(k)) ignored.add(k);
          if (prices.input_mtok === undefined) {
            throw new Error("no per-token input price (input_mtok) in the data");
          }
          const row: PriceRow = {
            model: model.id,
            effectiveFrom,
            source: "catalogue",
            id: `${source.package}@${source.version}:${provider.id}:${model.id}:${label}`,
            provider: provider.id,
            ...ratesOf(prices, `${provider.id}.${model.id}`),
          };
          const problems = priceRowProblems(row);
          if (problems.length > 0) throw new Error(problems.map((x) => `${x.path} ${x.message}`).join("; "));
          modelRows.push(row);
        }
      } catch (error) {
        note((error as Error).message);
        continue;
      }
      seen.add(key);
      rows.push(...modelRows);
      const alias: ModelAlias = { model: model.id, match: model.match as ModelMatch };
      if (modelAliasProblems([alias]).length === 0) aliases.push(alias);
      else note("match rule not understood; only the exact model id is priced");
    }
  });
  return { rows, aliases, source, skipped, ignoredPriceKeys: [...ignored].sort() };
}

/** name and version of the installed @pydantic/genai-prices, read from its package.json. */
export function catalogueSource(): CatalogueSource {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(CATALOGUE_PACKAGE));
  for (let depth = 0; depth < 8; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === CATALOGUE_PACKAGE && typeof pkg.version === "string") {
        return { package: CATALOGUE_PACKAGE, version: pkg.version };
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`cannot find the package.json of ${CATALOGUE_PACKAGE}`);
}

let loaded: Catalogue | undefined;

/** The built-in catalogue from the installed package's bundled data (built once, then shared). */
export function loadCatalogue(): Catalogue {
  if (!loaded) {
    const providers = CATALOGUE_PROVIDERS.map((id) => {
      const provider = findProvider({ providerId: id });
      if (!provider) throw new Error(`${CATALOGUE_PACKAGE} has no provider ${id}`);
      return provider;
    });
    loaded = buildCatalogue(providers, catalogueSource());
  }
  return loaded;
}
