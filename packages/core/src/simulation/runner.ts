import type { Alert } from "../alerts/payload.js";
import { ManualClock } from "../clock.js";
import type { BalanceRule } from "../engine/balances.js";
import { listAll } from "../engine/book.js";
import { Engine } from "../engine/engine.js";
import type { EventInput } from "../engine/inputs.js";
import {
  type BalanceGate,
  type CheckEvent,
  type CheckResult,
  type CustomerContext,
  Limiter,
} from "../engine/limiter.js";
import type { KeyMinter } from "../engine/ports.js";
import type { PriceCatalogue } from "../engine/pricing.js";
import { invalid } from "../errors.js";
import { copyFields } from "../fields.js";
import type { LedgerEntry } from "../ledger/types.js";
import { bounds } from "../limits.js";
import { meterMatches, meterValue } from "../meter/meter.js";
import type { EventPage, EventPageScan, EventToStore, RecordKind, Store } from "../ports/store.js";
import { formatPicoUsd } from "../pricing/money.js";
import { formatInstant, parseInstant } from "../time.js";
import type { MeterDef, UsageEvent } from "../types.js";
import { applyDefinitions, type ProposedConfig } from "./apply.js";
import { type SimulationResult, SimulationTally } from "./report.js";

/**
 * What-if replays (issue #11): the stored events of a range, in time order, through a second Engine
 * that has the proposed definitions, over its own store, on a ManualClock set to each event's
 * timestamp. The decisions are the live ones' code (Engine.check, Engine.recordEvents); only the
 * state differs. The live store is only read. See docs/simulation.md.
 */

export interface SimulationInput {
  /** RFC 3339; inclusive. */
  from: string;
  /** RFC 3339; exclusive. */
  to: string;
  /** Only these customers' events. @default every customer */
  customers?: string[];
  /** The proposed tollgate.yaml (JSON): applied over a copy of the live definitions. */
  config: ProposedConfig;
  /**
   * `live`: start from a copy of the live definitions (customers, plans, meters, limits, prices,
   * rules, settings) and apply the proposal on top, as `tollgate apply` would; `empty`: the proposal
   * alone. @default "live"
   */
  base?: "live" | "empty";
}

export interface SimulationProgress {
  /** Events replayed so far. */
  events: number;
  /** The timestamp the replay has reached. */
  at: number;
  /** Share of the time range replayed, 0 to 1. */
  fraction: number;
}

/** What the simulated store must tell the runner (a MemoryStore sink does: onAppend, onAlert). */
export interface SimulationStoreHooks {
  onAppend(workspaceId: string, events: EventToStore[], inserted: number[]): void;
  onAlert(workspaceId: string, alert: Alert): void;
}

export interface SimulationDeps {
  /** The live store: read only (definitions, ledgers, events). */
  source: Store;
  workspaceId: string;
  /** A fresh store for the simulated engine that calls the hooks (MemoryStore with retainEvents: false). */
  createStore: (hooks: SimulationStoreHooks) => Store;
  keys: KeyMinter;
  isValidTimeZone: (zone: string) => boolean;
  prices?: PriceCatalogue;
  /** A monotonic clock in ms, only for the reported rate (never for decisions). @default none (0) */
  stopwatch?: () => number;
  /**
   * Called after every page: lets the process's event loop run (timers, I/O, other requests), since
   * a replay otherwise only ever waits on settled promises. The server passes a setImmediate.
   */
  pause?: () => Promise<void>;
  /**
   * How admitted events reach the simulated engine's state. `direct` (the default when the workspace
   * has no model classes): already priced and normalized, straight into the limiter's counters and
   * the balances (what `Engine.recordEvents` does after storing), without the sink store's canonical
   * JSON, fingerprints and RFC 3339 round trip. `store`: through `Engine.recordEvents` and the sink
   * store, as a live ingest. Both report the same (test/simulation/paths.test.ts).
   */
  recording?: "direct" | "store";
}

/** Bounds of a simulation. */
export const simulationBounds = {
  /** Events read per page from the live store (memory holds about one page). */
  pageEvents: 2_000,
  /** Events between two sweeps of the simulated limiter (ended windows are dropped). */
  sweepEvents: 50_000,
  /** A replay lets the event loop run at least this often (when given `pause` and `stopwatch`). */
  pauseEveryMs: 20,
  /** Customers a simulation may name. */
  customersMax: 1_000,
} as const;

/** Definitions copied from the live workspace when base is "live". */
const DEFINITION_KINDS: RecordKind[] = [
  "setting",
  "price",
  "meter",
  "plan",
  "customer",
  "limit",
  "rate_limit",
  "concurrency_limit",
  "balance_rule",
];

export class Simulation {
  private readonly tally = new SimulationTally();
  private cancelled = false;
  /**
   * Admitted events not recorded yet: recorded together (one recordEvents per batch) before the
   * first check that could see them, i.e. before a check of a customer with an event in the batch
   * (its quotas and balance), or before every check when a quota counts the whole workspace.
   */
  private pending: EventInput[] = [];
  /** The same, on the direct path: events as recordEvents would have normalized them. */
  private pendingDirect: UsageEvent[] = [];
  private readonly pendingCustomers = new Set<string>();
  private sharedCounters = true;
  private direct = false;
  /** Customers' contexts for the direct path's batches (definitions do not change during a replay). */
  private readonly contexts = new Map<string, CustomerContext>();

  private constructor(
    private readonly deps: SimulationDeps,
    readonly engine: Engine,
    private readonly clock: ManualClock,
    readonly from: number,
    readonly to: number,
    readonly customers: string[] | null,
    private readonly liveRules: { rule: BalanceRule; meter: MeterDef }[],
    private readonly replayLimiter: ReplayLimiter | null,
  ) {}

  /**
   * Checks the input, builds the simulated engine and applies the proposal: a bad range, customer
   * list or definition is a 400 here, before anything runs.
   */
  static async prepare(deps: SimulationDeps, input: SimulationInput): Promise<Simulation> {
    const from = parseInstant(input.from, "from");
    const to = parseInstant(input.to, "to");
    if (from >= to) throw invalid("from must be before to", { field: "from" });
    const customers = input.customers ?? null;
    if (customers !== null) {
      if (customers.length === 0 || customers.length > simulationBounds.customersMax) {
        throw invalid(`customers lists 1 to ${simulationBounds.customersMax} ids`, { field: "customers" });
      }
      for (const [i, c] of customers.entries()) {
        if (typeof c !== "string" || c.length === 0 || c.length > bounds.idLengthMax) {
          throw invalid("a customer id is a non-empty string", { field: `customers[${i}]` });
        }
      }
    }
    const ws = deps.workspaceId;
    const clock = new ManualClock(from);
    let sim: Simulation | undefined;
    const store = deps.createStore({
      onAppend: (_ws, events, inserted) => sim?.onAppend(events, inserted),
      onAlert: (_ws, alert) => sim?.tally.alert(alert),
    });
    await store.ensureWorkspace(ws, from);
    let replayLimiter: ReplayLimiter | null = null;
    const engine = new Engine({
      store,
      clock,
      keys: deps.keys,
      isValidTimeZone: deps.isValidTimeZone,
      ...(deps.prices ? { prices: deps.prices } : {}),
      limiter: (c) => {
        replayLimiter = new ReplayLimiter(c.store, c.book, c.clock, c.newId, c.observer);
        return replayLimiter;
      },
    });
    if ((input.base ?? "live") === "live") {
      for (const kind of DEFINITION_KINDS) {
        for (const r of await listAll<unknown>(deps.source, ws, kind)) {
          await store.putRecord(ws, kind, r.id, r.body, from);
        }
      }
      // Balances as they stood at `from`: grants, debits and minimums before it (not holds).
      for (const r of await listAll<unknown>(deps.source, ws, "customer")) {
        if (customers !== null && !customers.includes(r.id)) continue;
        const entries = (await deps.source.loadLedger(ws, r.id)).filter(
          (e) => e.at < from && e.kind !== "hold" && e.kind !== "commit" && e.kind !== "release",
        );
        if (entries.length > 0) await store.appendLedger(ws, r.id, entries);
      }
    }
    await applyDefinitions(engine, ws, input.config);
    // The live debit rules, to tell what the replayed events actually cost in credits.
    const meters = new Map<string, MeterDef>();
    for (const r of await listAll<Omit<MeterDef, "id">>(deps.source, ws, "meter")) {
      meters.set(r.id, { id: r.id, ...r.body } as MeterDef);
    }
    const liveRules: { rule: BalanceRule; meter: MeterDef }[] = [];
    for (const r of await listAll<BalanceRule>(deps.source, ws, "balance_rule")) {
      const meter = meters.get(r.body.meter);
      if (meter) liveRules.push({ rule: r.body, meter });
    }
    sim = new Simulation(deps, engine, clock, from, to, customers, liveRules, replayLimiter);
    return sim;
  }

  /** Stops a running replay at the next page; run() then rejects. */
  cancel(): void {
    this.cancelled = true;
  }

  /** Replays the range; resolves with the findings. */
  async run(onProgress?: (p: SimulationProgress) => void): Promise<SimulationResult> {
    const { source, workspaceId: ws } = this.deps;
    const engine = this.engine;
    const started = this.deps.stopwatch?.() ?? 0;
    let events = 0;
    let nextSweep = simulationBounds.sweepEvents;
    let lastPause = started;
    // Workspace-wide quotas are in every customer's set: then no two events may share a batch.
    const book = await engine.book.get(ws);
    this.sharedCounters = book
      .effective("\u0000simulation", null)
      .quotas.some((q) => q.scope.kind === "workspace");
    // Model classes add dimensions when an event is recorded (normalizeEvent): then the store path.
    const ent = await engine.entitlements.get(ws);
    this.direct =
      (this.deps.recording ?? "direct") === "direct" && ent.classes.empty && this.replayLimiter !== null;
    if (!engine.pricing.ready(ws)) await engine.pricing.prepare(ws);
    const scan: EventPageScan = {
      from: this.from,
      to: this.to,
      ...(this.customers ? { customers: this.customers } : {}),
    };
    const pages = source.streamEvents
      ? source.streamEvents(ws, scan, simulationBounds.pageEvents)
      : pagedEvents(source, ws, scan, simulationBounds.pageEvents);
    for await (const page of pages) {
      if (this.cancelled) throw new Error("the simulation was cancelled");
      if (page.events.length === 0) continue;
      for (let i = 0; i < page.events.length; i++) {
        const event = page.events[i]!.event;
        if (this.direct) {
          // replay's direct path, inline (an async call per event costs more than the rest of it).
          if (this.flushesBefore(event)) await this.flush(ws); // at the clock of the batch's last event
          this.clock.set(event.timestamp);
          const values = checkedValues(event);
          this.replayLimiter!.take();
          // engine.check's code without its promise when the decision is synchronous (no await).
          const decided = engine.checkNow(ws, {
            event: { type: event.type, customer: event.customer, values, dimensions: event.dimensions },
          });
          const result = decided instanceof Promise ? await decided : decided;
          if (Simulation.raisesOnCheck(result)) await engine.alerts.settle();
          this.checkedDirect(ws, event, values, result);
        } else await this.replay(ws, engine, event);
        // Let the process serve others at least every pauseEveryMs (a page can take longer than that).
        if ((i & 127) === 127 && this.deps.pause && this.deps.stopwatch) {
          const now = this.deps.stopwatch();
          if (now - lastPause >= simulationBounds.pauseEveryMs) {
            await this.deps.pause();
            lastPause = this.deps.stopwatch();
          }
        }
      }
      events += page.events.length;
      const last = page.events[page.events.length - 1]!;
      if (events >= nextSweep) {
        await this.flush(ws);
        engine.limiter.sweep(this.clock.now());
        nextSweep = events + simulationBounds.sweepEvents;
      }
      if (this.deps.pause) {
        await this.deps.pause();
        lastPause = this.deps.stopwatch?.() ?? 0;
      }
      onProgress?.({
        events,
        at: last.event.timestamp,
        fraction: Math.min(1, (last.event.timestamp - this.from) / (this.to - this.from)),
      });
    }
    if (this.cancelled) throw new Error("the simulation was cancelled");
    await this.flush(ws);
    await engine.alerts.settle();
    const elapsedMs = (this.deps.stopwatch?.() ?? 0) - started;
    return this.tally.result({ from: this.from, to: this.to, customers: this.customers, elapsedMs });
  }

  /** Whether the pending batch must be recorded before this event's check can run (it could see it). */
  private flushesBefore(event: UsageEvent): boolean {
    const pending = this.direct ? this.pendingDirect.length : this.pending.length;
    return (
      pending > 0 &&
      (this.sharedCounters || this.pendingCustomers.has(event.customer) || pending >= bounds.batchEventsMax)
    );
  }

  /**
   * The direct path of `replay`, after the check (run() makes it): the values the check priced (at
   * this instant, as recordEvents would price them) are kept for recording, or price a refused event.
   */
  private checkedDirect(ws: string, event: UsageEvent, values: Record<string, number>, result: CheckResult) {
    const priced = this.replayLimiter!.take()?.values ?? this.price(ws, values, event);
    this.tally.check(event.customer, event.timestamp, event.values.cost ?? 0, result);
    this.tallyActualCredits(event);
    if (result.allowed) {
      this.pendingDirect.push({
        id: event.id,
        type: event.type,
        customer: event.customer,
        timestamp: event.timestamp,
        values: priced,
        dimensions: event.dimensions,
      });
      this.pendingCustomers.add(event.customer);
    } else {
      this.tally.priced(event.customer, priced.cost);
    }
  }

  /** Pricing as replay does it, for a check that did not reach the limiter (it has none of its values). */
  private price(ws: string, values: Record<string, number>, event: UsageEvent): Record<string, number> {
    const priced = copyFields(values);
    try {
      this.engine.pricing.price(ws, priced, event.dimensions, event.timestamp, "");
    } catch {
      // a reject policy refuses unknown models: such an event has no proposed cost
    }
    return priced;
  }

  /**
   * A soft or shadow quota a check let a request past raises `limit.exceeded` in the background
   * (AlertCenter.onCheck), at the clock it then reads: the replay waits for it (alerts.settle) before
   * the clock moves on, so that the alert is the check's, whatever the number of awaits between two
   * events.
   */
  private static raisesOnCheck(result: CheckResult): boolean {
    for (const o of result.limits) {
      if (o.kind === "quota" && o.exceeded && o.enforcement !== "hard") return true;
    }
    return false;
  }

  private tallyActualCredits(event: UsageEvent): void {
    for (const { rule, meter } of this.liveRules) {
      if (!meterMatches(meter, event)) continue;
      this.tally.actualCredits(event.customer, [
        {
          rule: rule.id,
          units: meterValue(meter, event),
          creditsPerUnit: rule.creditsPerUnit,
          unit: rule.unit,
        },
      ]);
    }
  }

  /** One stored event: check it at its own time; if admitted, record it so that counters advance. */
  private async replay(ws: string, engine: Engine, event: UsageEvent): Promise<void> {
    if (this.flushesBefore(event)) await this.flush(ws); // at the clock of the batch's last event
    this.clock.set(event.timestamp);
    const values = checkedValues(event);
    const result = await engine.check(ws, {
      event: { type: event.type, customer: event.customer, values, dimensions: event.dimensions },
    });
    if (Simulation.raisesOnCheck(result)) await engine.alerts.settle();
    this.tally.check(event.customer, event.timestamp, event.values.cost ?? 0, result);
    this.tallyActualCredits(event);
    if (result.allowed) {
      const input: EventInput = {
        id: event.id,
        type: event.type,
        customer: event.customer,
        timestamp: formatInstant(event.timestamp),
        values,
        dimensions: event.dimensions,
      };
      this.pending.push(input);
      this.pendingCustomers.add(event.customer);
    } else {
      // Not admitted: priced all the same, so that the report can tell prices from denials.
      const priced = copyFields(values);
      try {
        engine.pricing.price(ws, priced, event.dimensions, event.timestamp, "");
      } catch {
        // a reject policy refuses unknown models: such an event has no proposed cost
      }
      this.tally.priced(event.customer, priced.cost);
    }
  }

  private async flush(ws: string): Promise<void> {
    if (this.pendingDirect.length > 0) return this.flushDirect(ws);
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingCustomers.clear();
    await this.engine.recordEvents(ws, batch);
  }

  /**
   * Records a batch on the direct path: what Engine.recordEvents does once its events are normalized
   * and the store has committed them (the sink keeps nothing): the limiter's counter increments (and,
   * through them, the alert center), the debit rules' usage entries on the loaded balances, then the
   * tally (the sink's onAppend).
   */
  private async flushDirect(ws: string): Promise<void> {
    const batch = this.pendingDirect;
    this.pendingDirect = [];
    this.pendingCustomers.clear();
    const engine = this.engine;
    const now = this.clock.now();
    const book = engine.book.peek(ws) ?? (await engine.book.get(ws));
    const ledgers: (LedgerEntry[] | undefined)[] | null = book.balanceRules.length > 0 ? [] : null;
    if (ledgers !== null) {
      for (const e of batch)
        ledgers.push(engine.balances.usageEntries(book.balanceRules, book.meters, e, now));
    }
    const contexts = this.contexts;
    if (contexts.size >= simulationBounds.customersMax * 10) contexts.clear();
    for (const e of batch)
      if (!contexts.has(e.customer)) contexts.set(e.customer, await engine.customerContext(ws, e.customer));
    // What prepareIncrements' function does after a commit, for every event of the batch; never in
    // a snapshot a counter was loaded from (the sink store holds no events).
    this.replayLimiter!.applyIncrements(ws, book, batch, contexts, null, Number.MAX_SAFE_INTEGER);
    if (ledgers !== null) {
      for (let i = 0; i < batch.length; i++) {
        const ledger = ledgers[i];
        if (ledger) engine.balances.applyCommitted(ws, batch[i]!.customer, ledger);
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      this.tally.recorded(e.customer, e.values.cost, ledgers === null ? undefined : usageOf(ledgers[i]));
      this.tally.priced(e.customer, e.values.cost);
    }
  }

  private onAppend(events: EventToStore[], inserted: number[]): void {
    for (const i of inserted) {
      const e = events[i]!;
      this.tally.recorded(e.event.customer, e.event.values.cost, usageOf(e.ledger));
      this.tally.priced(e.event.customer, e.event.values.cost);
    }
  }
}

/**
 * The engine's own Limiter, which keeps the last event a check handed it: the check's priced values,
 * so that the direct path does not price each event a second time to record it.
 */
class ReplayLimiter extends Limiter {
  private checked: CheckEvent | null = null;

  /** The event of the last check, once. */
  take(): CheckEvent | null {
    const e = this.checked;
    this.checked = null;
    return e;
  }

  override check(
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance?: BalanceGate | null,
  ): CheckResult | Promise<CheckResult> {
    this.checked = event;
    return super.check(workspaceId, customer, event, reserve, balance);
  }
}

function usageOf(ledger: LedgerEntry[] | undefined) {
  if (!ledger) return undefined;
  const out: { rule: string; units: number; creditsPerUnit: number; unit: number }[] = [];
  for (const l of ledger) {
    if (l.kind === "usage")
      out.push({ rule: l.rule, units: l.units, creditsPerUnit: l.creditsPerUnit, unit: l.unit });
  }
  return out;
}

/**
 * The values a stored event is checked with: a cost Tollgate computed (a price row) is priced again
 * under the proposed prices; a cost the producer sent (no price row) is the producer's word and stays
 * (as in repricing). Stored costs are pico-USD numbers; the check refuses a number for money.
 */
function checkedValues(event: UsageEvent): Record<string, number> {
  const values = event.values;
  if (values.cost === undefined) return values;
  const rest = copyFields(values, "cost");
  if (event.priceRow !== undefined) return rest;
  // The producer's cost as a check (and recordEvents) takes it: a decimal USD string, read back exactly.
  rest.cost = formatPicoUsd(values.cost) as unknown as number;
  return rest;
}

/** pageEvents' pages from one snapshot (the first page's), for a store without streamEvents. */
async function* pagedEvents(
  source: Store,
  ws: string,
  scan: EventPageScan,
  pageSize: number,
): AsyncGenerator<EventPage> {
  let after: { timestamp: number; seq: number } | undefined;
  let asOfSeq: number | undefined;
  for (;;) {
    const page = await source.pageEvents(
      ws,
      { ...scan, ...(after ? { after } : {}), ...(asOfSeq !== undefined ? { asOfSeq } : {}) },
      pageSize,
    );
    asOfSeq = page.asOfSeq;
    if (page.events.length === 0) return;
    yield page;
    const last = page.events[page.events.length - 1]!;
    after = { timestamp: last.event.timestamp, seq: last.seq };
  }
}
