import { invalid, TollgateError } from "../errors.js";
import type { Store } from "../ports/store.js";
import { eventCost, eventCostPico, hasTokenValues } from "../pricing/cost.js";
import {
  decimalFromNumber,
  femtoToPico,
  formatPicoUsd,
  formatPricePerMTok,
  parsePicoUsd,
  parsePricePerMTok,
} from "../pricing/money.js";
import {
  DEFAULT_UNKNOWN_MODEL_POLICY,
  decidePrice,
  type UnknownModelPolicy,
  unknownModelPolicyProblems,
} from "../pricing/policy.js";
import { type ModelAlias, normalizeModel, PriceBook, type PriceRow } from "../pricing/rows.js";
import { formatInstant, parseInstant } from "../time.js";
import { listAll } from "./book.js";

/** The catalogue the server loads (from a maintained package) and gives the engine. */
export interface PriceCatalogue {
  rows: PriceRow[];
  aliases: ModelAlias[];
  /** Where the rows come from, shown by GET /v1/prices. */
  source?: { package: string; version: string };
}

/** PUT /v1/prices/{model}: USD per 1M tokens as decimal strings (or numbers, read as written). */
export interface PriceInput {
  input: string | number;
  output: string | number;
  cached_input?: string | number;
  reasoning?: string | number;
  effective_from?: string;
}

export interface PricingSettingsInput {
  unknown_model: "tokens_only" | "reject" | "fallback";
  fallback_model?: string;
}

/** A workspace override as stored (bigints as decimal strings of nano-USD per 1M tokens). */
interface PriceBody {
  model: string;
  effectiveFrom: number;
  input: string;
  output: string;
  cachedInput: string;
  reasoning?: string;
}

export interface PriceView {
  model: string;
  effective_from: string;
  source: "catalogue" | "override";
  id: string;
  provider?: string;
  input: string;
  output: string;
  cached_input: string;
  reasoning?: string;
}

/** What pricing decided for one event. */
export type EventPricing =
  | { kind: "priced"; cost: number; rowId: string }
  | { kind: "own" }
  | { kind: "none"; unknownModel?: string };

/**
 * Prices events: the catalogue plus each workspace's overrides (effective-dated rows), and the
 * workspace's policy for unknown models. Costs are exact (femto-USD from the pricing module) and kept
 * on events as `values.cost` in pico-USD; an event that brings its own cost keeps it.
 */
export class Pricing {
  private readonly books = new Map<string, Promise<{ book: PriceBook; policy: UnknownModelPolicy }>>();
  private readonly loaded = new Map<string, { book: PriceBook; policy: UnknownModelPolicy }>();
  private readonly catalogueBook: PriceBook;

  constructor(
    private readonly store: Store,
    readonly catalogue: PriceCatalogue,
  ) {
    this.catalogueBook = new PriceBook(catalogue.rows, catalogue.aliases);
  }

  /** Whether `price` can run for the workspace without `prepare`. */
  ready(workspaceId: string): boolean {
    return this.loaded.has(workspaceId);
  }

  /** Loads the workspace's price book so that `price` can run synchronously. */
  async prepare(workspaceId: string): Promise<void> {
    if (this.loaded.has(workspaceId)) return;
    let p = this.books.get(workspaceId);
    if (!p) {
      p = this.load(workspaceId);
      this.books.set(workspaceId, p);
      p.then(
        (b) => {
          if (this.books.get(workspaceId) === p) this.loaded.set(workspaceId, b);
        },
        () => this.books.delete(workspaceId),
      );
    }
    await p;
  }

  invalidate(workspaceId: string): void {
    this.books.delete(workspaceId);
    this.loaded.delete(workspaceId);
  }

  /**
   * Prices one event in place: sets `values.cost` (pico-USD) unless the event has its own, and
   * returns what was decided. `raw` is the client's values, where `cost` may be a decimal USD string.
   * Throws INVALID_REQUEST (field under `fieldPrefix`) for a bad own cost, token values that do not
   * add up, or an unknown model under the `reject` policy. Call `prepare` first.
   */
  price(
    workspaceId: string,
    values: Record<string, number>,
    dimensions: Record<string, string>,
    at: number,
    /**
     * Before the field names of errors: a string, or the event's index in a batch (for
     * `events[i].`), so that a batch does not build one prefix per event for errors it rarely has.
     */
    fieldPrefix: string | number,
  ): EventPricing {
    const own = values.cost as unknown;
    if (own !== undefined) {
      values.cost = ownCost(own, `${prefixText(fieldPrefix)}values.cost`);
      return { kind: "own" };
    }
    const model = dimensions.model;
    if (model === undefined || !hasTokenValues(values)) return { kind: "none" };
    const { book, policy } = this.loaded.get(workspaceId) ?? {
      book: this.catalogueBook,
      policy: DEFAULT_UNKNOWN_MODEL_POLICY,
    };
    const decision = decidePrice(book, model, at, policy);
    if (decision.action === "reject") throw withPrefix(decision.error, fieldPrefix);
    if (decision.action === "tokens_only") return { kind: "none", unknownModel: model };
    // Exact with Numbers for every realistic event; the BigInt path below otherwise (and for errors).
    const fast = eventCostPico(values, decision.row);
    if (fast !== null) {
      values.cost = fast;
      return { kind: "priced", cost: fast, rowId: decision.row.id };
    }
    const result = eventCost(values, decision.row);
    if (!result.ok) throw withPrefix(result.error, fieldPrefix);
    const pico = femtoToPico(result.cost);
    // Rows are refused with more than 6 decimals per 1M tokens (putPrice), so this cannot happen.
    if (pico === null || pico > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalid(`the event's cost ${formatPicoUsd(result.cost / 1000n)} USD cannot be stored exactly`, {
        field: `${prefixText(fieldPrefix)}values`,
      });
    }
    values.cost = Number(pico);
    return { kind: "priced", cost: Number(pico), rowId: result.rowId };
  }

  // ---- the API ---------------------------------------------------------------------------------

  async putPrice(
    workspaceId: string,
    model: string,
    input: PriceInput,
    now: number,
  ): Promise<{ price: PriceView; created: boolean }> {
    const name = normalizeModel(model);
    if (name === "") throw invalid("model must not be empty", { field: "model" });
    const effectiveFrom =
      input.effective_from === undefined ? now : parseInstant(input.effective_from, "effective_from");
    const rate = (v: string | number | undefined, field: string): bigint | undefined => {
      if (v === undefined) return undefined;
      const text = typeof v === "number" ? decimalFromNumber(v, field) : v;
      const nano = parsePricePerMTok(text, { field });
      // Costs are kept in pico-USD: exact for prices with up to 6 decimals per 1M tokens (money.ts).
      if (nano % 1000n !== 0n) {
        throw invalid(`${field} has more than 6 decimal places per 1M tokens`, { field, value: text });
      }
      return nano;
    };
    const body: PriceBody = {
      model: name,
      effectiveFrom,
      input: rate(input.input, "input")!.toString(),
      output: rate(input.output, "output")!.toString(),
      cachedInput: (rate(input.cached_input, "cached_input") ?? rate(input.input, "input")!).toString(),
    };
    const reasoning = rate(input.reasoning, "reasoning");
    if (reasoning !== undefined) body.reasoning = reasoning.toString();
    const { created } = await this.store.putRecord(
      workspaceId,
      "price",
      `${name}@${formatInstant(effectiveFrom)}`,
      body,
      now,
    );
    this.invalidate(workspaceId);
    return { price: viewOf(toRow(body)), created };
  }

  async deletePrice(workspaceId: string, model: string, effectiveFrom: string | undefined): Promise<boolean> {
    const name = normalizeModel(model);
    let removed = false;
    for (const r of await listAll<PriceBody>(this.store, workspaceId, "price")) {
      if (r.body.model !== name) continue;
      if (
        effectiveFrom !== undefined &&
        r.body.effectiveFrom !== parseInstant(effectiveFrom, "effective_from")
      )
        continue;
      removed = (await this.store.deleteRecord(workspaceId, "price", r.id)) || removed;
    }
    this.invalidate(workspaceId);
    return removed;
  }

  /** Catalogue rows and the workspace's overrides, by model then date; `model` narrows to one. */
  async listPrices(workspaceId: string, model?: string): Promise<PriceView[]> {
    const overrides = (await listAll<PriceBody>(this.store, workspaceId, "price")).map((r) => toRow(r.body));
    const wanted = model === undefined ? undefined : normalizeModel(model);
    return [...this.catalogue.rows, ...overrides]
      .filter((r) => wanted === undefined || normalizeModel(r.model) === wanted)
      .sort(
        (a, b) =>
          (a.model < b.model ? -1 : a.model > b.model ? 1 : 0) ||
          a.effectiveFrom - b.effectiveFrom ||
          (a.source === b.source ? 0 : a.source === "catalogue" ? -1 : 1),
      )
      .map(viewOf);
  }

  async putSettings(workspaceId: string, input: PricingSettingsInput, now: number) {
    const policy: UnknownModelPolicy = { policy: input.unknown_model };
    if (input.fallback_model !== undefined) policy.fallbackModel = input.fallback_model;
    await this.prepare(workspaceId);
    const book = this.loaded.get(workspaceId)?.book ?? this.catalogueBook;
    const problems = unknownModelPolicyProblems(policy, (m) => book.knows(m));
    if (problems.length > 0) {
      const p = problems[0]!;
      const field = p.path === "fallbackModel" ? "fallback_model" : "unknown_model";
      throw invalid(`${field} ${p.message}`, { field });
    }
    await this.store.putRecord(workspaceId, "setting", "pricing", policy, now);
    this.invalidate(workspaceId);
    return settingsView(policy);
  }

  async getSettings(workspaceId: string) {
    const r = await this.store.getRecord<UnknownModelPolicy>(workspaceId, "setting", "pricing");
    return settingsView(r?.body ?? DEFAULT_UNKNOWN_MODEL_POLICY);
  }

  /** The book in force for a workspace (for repricing and simulations). */
  async bookOf(workspaceId: string): Promise<PriceBook> {
    await this.prepare(workspaceId);
    return this.loaded.get(workspaceId)?.book ?? this.catalogueBook;
  }

  private async load(workspaceId: string) {
    const overrides = (await listAll<PriceBody>(this.store, workspaceId, "price")).map((r) => toRow(r.body));
    const policy =
      (await this.store.getRecord<UnknownModelPolicy>(workspaceId, "setting", "pricing"))?.body ??
      DEFAULT_UNKNOWN_MODEL_POLICY;
    const book =
      overrides.length === 0
        ? this.catalogueBook
        : new PriceBook([...this.catalogue.rows, ...overrides], this.catalogue.aliases);
    return { book, policy };
  }
}

function toRow(b: PriceBody): PriceRow {
  const row: PriceRow = {
    model: b.model,
    effectiveFrom: b.effectiveFrom,
    source: "override",
    id: `override:${b.model}:${formatInstant(b.effectiveFrom)}`,
    input: BigInt(b.input),
    output: BigInt(b.output),
    cachedInput: BigInt(b.cachedInput),
  };
  if (b.reasoning !== undefined) row.reasoning = BigInt(b.reasoning);
  return row;
}

function viewOf(r: PriceRow): PriceView {
  const v: PriceView = {
    model: r.model,
    effective_from: formatInstant(Math.max(0, r.effectiveFrom)),
    source: r.source,
    id: r.id,
    input: formatPricePerMTok(r.input),
    output: formatPricePerMTok(r.output),
    cached_input: formatPricePerMTok(r.cachedInput),
  };
  if (r.provider !== undefined) v.provider = r.provider;
  if (r.reasoning !== undefined) v.reasoning = formatPricePerMTok(r.reasoning);
  return v;
}

function settingsView(p: UnknownModelPolicy) {
  return {
    unknown_model: p.policy,
    ...(p.fallbackModel !== undefined ? { fallback_model: p.fallbackModel } : {}),
  };
}

/** An event's own `values.cost`: a decimal USD string ("0.0045"), kept exactly in pico-USD. */
function ownCost(v: unknown, field: string): number {
  if (typeof v !== "string") {
    throw invalid(`${field} is money: send it as a decimal USD string such as "0.0045"`, { field });
  }
  const pico = parsePicoUsd(v, { field });
  if (pico > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalid(`${field} is more than one event can cost (9007.199254740991 USD)`, { field });
  }
  return Number(pico);
}

/** A price() field prefix as text: an index i is `events[i].`. */
function prefixText(prefix: string | number): string {
  return typeof prefix === "number" ? `events[${prefix}].` : prefix;
}

function withPrefix(e: TollgateError, fieldPrefix: string | number): TollgateError {
  const prefix = prefixText(fieldPrefix);
  if (!prefix) return e;
  const field = e.details?.field;
  return new TollgateError(e.code, e.message, {
    ...e.details,
    ...(typeof field === "string" ? { field: `${prefix}${field}` } : {}),
  });
}
