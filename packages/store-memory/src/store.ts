import {
  type Alert,
  type ApiKeyRecord,
  type AppendResult,
  canonicalFlat,
  type DeliveryAttempt,
  type DeliveryRecord,
  type DeliveryState,
  type DueDelivery,
  type EventPage,
  type EventPageScan,
  type EventScan,
  type EventToStore,
  type LedgerEntry,
  type NewDelivery,
  type RecordKind,
  type ReservationRecord,
  type RollupQuery,
  type RollupTotals,
  type Store,
  type StoredRecord,
  type UsageEvent,
  type UsageRollupRow,
  type WebhookRecord,
  type WorkflowRunQuery,
  type WorkflowRunTotals,
  type Workspace,
} from "@tollgate/core";

export interface MemoryStoreOptions {
  /**
   * Keep appended events (and the usage ledger entries that come with them), so that scans, dedup
   * by id and rollups see them. A replay sink turns this off: every appended event is then new, is
   * handed to `afterCommit` (and `onAppend`) and dropped, so memory does not grow with the events.
   * Quota counters stay exact as long as each counter is loaded (by a check) before its first event
   * is recorded, which is what a check-then-record replay does.
   * @default true
   */
  retainEvents?: boolean;
  /** Keep inserted alerts (listAlerts, deliveries). A replay sink counts them in `onAlert` instead. @default true */
  retainAlerts?: boolean;
  /** Told of every appended batch (after the commit), with the indexes of the events newly stored. */
  onAppend?: (workspaceId: string, events: EventToStore[], inserted: number[]) => void;
  /** Told of every alert inserted for the first time. */
  onAlert?: (workspaceId: string, alert: Alert) => void;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

interface StoredEvent {
  seq: number;
  event: UsageEvent;
  fingerprint: string;
}

interface HourCell {
  bucket: number;
  customer: string;
  type: string;
  dims: string;
  dimensions: Record<string, string>;
  events: number;
  values: Record<string, number>;
}

interface RunCell {
  workflow: string;
  run: string;
  customer: string;
  events: bigint;
  steps: bigint;
  tokensIn: bigint;
  tokensOut: bigint;
  cost: bigint;
  first: number;
  last: number;
}

interface DeliveryRow {
  seq: number;
  delivery: DeliveryRecord;
  attempts: DeliveryAttempt[];
}

interface WorkspaceState {
  workspace: Workspace;
  records: Map<RecordKind, Map<string, StoredRecord>>;
  events: StoredEvent[];
  /** `events` is in (timestamp, seq) order; appends out of time order clear it until the next scan. */
  sorted: boolean;
  byId: Map<string, StoredEvent>;
  ledgers: Map<string, { seq: number; entry: LedgerEntry }[]>;
  ledgerKeys: Map<string, Set<string>>;
  reservations: Map<string, { reservation: ReservationRecord }>;
  hours: Map<string, HourCell>;
  runs: Map<string, RunCell>;
  horizons: Map<string, number>;
  alerts: { seq: number; alert: Alert }[];
  alertIds: Set<string>;
  webhooks: Map<string, WebhookRecord>;
  deliveries: Map<string, DeliveryRow>;
}

/**
 * The reference Store: every port method, in memory, with the SQLite store's semantics (idempotent
 * appends, (timestamp, seq) scan order, rollups kept with the events, purge horizons, outbox). Not
 * durable, not shared. Values are copied in and out, so callers never alias the store's state.
 */
export class MemoryStore implements Store {
  readonly capabilities = { durable: false, shared: false } as const;
  private readonly spaces = new Map<string, WorkspaceState>();
  private readonly keys = new Map<string, ApiKeyRecord>();
  private eventSeq = 0;
  private ledgerSeq = 0;
  private alertSeq = 0;
  private deliverySeq = 0;
  private closed = false;
  private readonly retainEvents: boolean;
  private readonly retainAlerts: boolean;

  constructor(private readonly options: MemoryStoreOptions = {}) {
    this.retainEvents = options.retainEvents ?? true;
    this.retainAlerts = options.retainAlerts ?? true;
  }

  // ---- workspaces and keys --------------------------------------------------------------------

  async ensureWorkspace(id: string, now: number) {
    const hit = this.spaces.get(id);
    if (hit) return { workspace: { ...hit.workspace }, created: false };
    const ws = this.newSpace({ id, name: id, createdAt: now });
    this.spaces.set(id, ws);
    return { workspace: { ...ws.workspace }, created: true };
  }

  async getWorkspace(id: string) {
    const ws = this.spaces.get(id);
    return ws && { ...ws.workspace };
  }

  async listWorkspaces() {
    return [...this.spaces.values()].map((s) => ({ ...s.workspace }));
  }

  async insertApiKey(key: ApiKeyRecord) {
    this.space(key.workspaceId);
    for (const k of this.keys.values()) if (k.hash === key.hash) throw new Error("duplicate key hash");
    if (this.keys.has(key.id)) throw new Error("duplicate key id");
    this.keys.set(key.id, { ...key });
  }

  async findApiKeyByHash(hash: string) {
    for (const k of this.keys.values()) if (k.hash === hash) return { ...k };
    return undefined;
  }

  async listApiKeys(workspaceId: string, filter: { customerId?: string | null }) {
    return [...this.keys.values()]
      .filter(
        (k) =>
          k.workspaceId === workspaceId &&
          (filter.customerId === undefined ||
            filter.customerId === null ||
            k.customerId === filter.customerId),
      )
      .sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id))
      .map((k) => ({ ...k }));
  }

  async deleteApiKey(workspaceId: string, id: string, customerId?: string | null) {
    const k = this.keys.get(id);
    if (!k || k.workspaceId !== workspaceId || k.customerId !== (customerId ?? null)) return false;
    return this.keys.delete(id);
  }

  async touchApiKey(id: string, at: number) {
    const k = this.keys.get(id);
    if (k) k.lastUsedAt = at;
  }

  // ---- records ----------------------------------------------------------------------------------

  async putRecord<T>(workspaceId: string, kind: RecordKind, id: string, body: T, now: number) {
    const ws = this.space(workspaceId);
    let map = ws.records.get(kind);
    if (!map) {
      map = new Map();
      ws.records.set(kind, map);
    }
    const before = map.get(id);
    const record: StoredRecord = {
      id,
      body: clone(body),
      createdAt: before?.createdAt ?? now,
      updatedAt: now,
    };
    map.set(id, record);
    return { record: cloneRecord(record) as StoredRecord<T>, created: !before };
  }

  async getRecord<T>(workspaceId: string, kind: RecordKind, id: string) {
    const r = this.spaces.get(workspaceId)?.records.get(kind)?.get(id);
    return r && (cloneRecord(r) as StoredRecord<T>);
  }

  async listRecords<T>(workspaceId: string, kind: RecordKind, page: { after?: string; limit: number }) {
    const map = this.spaces.get(workspaceId)?.records.get(kind);
    if (!map) return [];
    const after = page.after ?? "";
    return [...map.keys()]
      .filter((id) => id > after)
      .sort(cmp)
      .slice(0, page.limit)
      .map((id) => cloneRecord(map.get(id)!) as StoredRecord<T>);
  }

  async deleteRecord(workspaceId: string, kind: RecordKind, id: string) {
    return this.spaces.get(workspaceId)?.records.get(kind)?.delete(id) ?? false;
  }

  // ---- events -----------------------------------------------------------------------------------

  async appendEvents(
    workspaceId: string,
    events: EventToStore[],
    afterCommit?: (inserted: number[], commitSeq: number) => void,
  ): Promise<AppendResult> {
    this.writable();
    const ws = this.space(workspaceId);
    const inserted: number[] = [];
    if (!this.retainEvents) {
      // A sink: every event is new (the replayed log has unique ids) and nothing is kept.
      for (let i = 0; i < events.length; i++) inserted.push(i);
      this.eventSeq += events.length;
    } else {
      // All or nothing: find a conflict before storing anything.
      const seen = new Map<string, string>();
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        const prior = ws.byId.get(e.event.id)?.fingerprint ?? seen.get(e.event.id);
        if (prior !== undefined && prior !== e.fingerprint)
          return { ok: false, conflictIndex: i, id: e.event.id };
        if (prior === undefined) {
          seen.set(e.event.id, e.fingerprint);
          inserted.push(i);
        }
      }
      for (const i of inserted) {
        const e = events[i]!;
        const stored: StoredEvent = {
          seq: ++this.eventSeq,
          event: copyEvent(e.event),
          fingerprint: e.fingerprint,
        };
        const last = ws.events[ws.events.length - 1];
        if (last && last.event.timestamp > stored.event.timestamp) ws.sorted = false;
        ws.events.push(stored);
        ws.byId.set(stored.event.id, stored);
        this.addRollups(ws, stored.event);
        if (e.ledger) this.appendLedgerNow(ws, stored.event.customer, e.ledger);
      }
    }
    const commitSeq = this.eventSeq;
    afterCommit?.(inserted, commitSeq);
    this.options.onAppend?.(workspaceId, events, inserted);
    return { ok: true, accepted: inserted.length, duplicates: events.length - inserted.length, inserted };
  }

  async scanEvents(
    workspaceId: string,
    scan: EventScan,
    visit: (event: UsageEvent, seq: number) => void,
  ): Promise<{ asOfSeq: number }> {
    const asOfSeq = this.eventSeq;
    const ws = this.spaces.get(workspaceId);
    if (!ws) return { asOfSeq };
    // A snapshot: what `visit` appends meanwhile is not visited.
    for (const e of this.ordered(ws).slice()) {
      if (matches(e.event, scan)) visit(copyEvent(e.event), e.seq);
    }
    return { asOfSeq };
  }

  // ---- simulation (issue #11) -------------------------------------------------------------------

  async pageEvents(workspaceId: string, scan: EventPageScan, limit: number): Promise<EventPage> {
    const asOfSeq = scan.asOfSeq ?? this.eventSeq;
    const ws = this.spaces.get(workspaceId);
    const out: EventPage["events"] = [];
    if (!ws) return { events: out, asOfSeq };
    const customers = scan.customers && new Set(scan.customers);
    const list = this.ordered(ws);
    // First position after the cursor (binary search on (timestamp, seq)).
    let lo = 0;
    if (scan.after) {
      const { timestamp, seq } = scan.after;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const m = list[mid]!;
        if (m.event.timestamp < timestamp || (m.event.timestamp === timestamp && m.seq <= seq)) lo = mid + 1;
        else hi = mid;
      }
    }
    for (let i = lo; i < list.length && out.length < limit; i++) {
      const e = list[i]!;
      if (e.seq > asOfSeq || !matches(e.event, scan)) continue;
      if (customers && !customers.has(e.event.customer)) continue;
      out.push({ event: copyEvent(e.event), seq: e.seq });
    }
    return { events: out, asOfSeq };
  }

  // ---- reservations -----------------------------------------------------------------------------

  async saveReservation(workspaceId: string, reservation: ReservationRecord) {
    this.writable();
    this.space(workspaceId).reservations.set(reservation.id, { reservation: clone(reservation) });
  }

  async getReservation(workspaceId: string, id: string) {
    const r = this.spaces.get(workspaceId)?.reservations.get(id);
    return r && clone(r.reservation);
  }

  async listActiveReservations() {
    const out: { workspaceId: string; reservation: ReservationRecord }[] = [];
    for (const [workspaceId, ws] of this.spaces) {
      for (const { reservation } of ws.reservations.values()) {
        if (reservation.state === "active") out.push({ workspaceId, reservation: clone(reservation) });
      }
    }
    return out;
  }

  async purgeReservations(before: number) {
    let n = 0;
    for (const ws of this.spaces.values()) {
      for (const [id, r] of ws.reservations) {
        if (r.reservation.state !== "active" && r.reservation.expiresAt < before) {
          ws.reservations.delete(id);
          n++;
        }
      }
    }
    return n;
  }

  // ---- balances ---------------------------------------------------------------------------------

  async appendLedger(workspaceId: string, customer: string, entries: LedgerEntry[]) {
    this.writable();
    this.appendLedgerNow(this.space(workspaceId), customer, entries);
  }

  async loadLedger(workspaceId: string, customer: string) {
    return (this.spaces.get(workspaceId)?.ledgers.get(customer) ?? []).map((r) => clone(r.entry));
  }

  async listLedger(workspaceId: string, customer: string, page: { after?: number; limit: number }) {
    const after = page.after ?? 0;
    return (this.spaces.get(workspaceId)?.ledgers.get(customer) ?? [])
      .filter((r) => r.seq > after)
      .slice(0, page.limit)
      .map((r) => ({ seq: r.seq, entry: clone(r.entry) }));
  }

  private appendLedgerNow(ws: WorkspaceState, customer: string, entries: LedgerEntry[]): void {
    let list = ws.ledgers.get(customer);
    let keys = ws.ledgerKeys.get(customer);
    if (!list || !keys) {
      list = [];
      keys = new Set();
      ws.ledgers.set(customer, list);
      ws.ledgerKeys.set(customer, keys);
    }
    for (const entry of entries) {
      if (entry.kind !== "minimum_balance") {
        if (keys.has(entry.idempotencyKey)) continue;
        keys.add(entry.idempotencyKey);
      }
      list.push({ seq: ++this.ledgerSeq, entry: clone(entry) });
    }
  }

  // ---- reports ----------------------------------------------------------------------------------

  async queryRollups(workspaceId: string, q: RollupQuery): Promise<RollupTotals[]> {
    const ws = this.spaces.get(workspaceId);
    if (!ws || q.from >= q.to) return [];
    const size = q.resolution === "hour" ? HOUR_MS : DAY_MS;
    const types = q.types && new Set(q.types);
    const cells = new Map<string, RollupTotals>();
    for (const c of ws.hours.values()) {
      const bucket = Math.floor(c.bucket / size) * size;
      if (bucket < q.from || bucket >= q.to) continue;
      if (q.customer !== undefined && c.customer !== q.customer) continue;
      if (types && !types.has(c.type)) continue;
      const b = q.byBucket === false ? q.from : bucket;
      const customer = q.byCustomer ? c.customer : null;
      const key = `${b}\u0000${customer}\u0000${c.dims}`;
      let t = cells.get(key);
      if (!t) {
        t = {
          bucket: b,
          customer,
          dimensions: c.dims,
          events: 0n,
          tokensIn: 0n,
          tokensOut: 0n,
          steps: 0n,
          cost: 0n,
        };
        cells.set(key, t);
      }
      t.events += BigInt(c.events);
      t.tokensIn += BigInt(c.values.tokens_in ?? 0);
      t.tokensOut += BigInt(c.values.tokens_out ?? 0);
      t.steps += BigInt(c.values.steps ?? 0);
      t.cost += BigInt(c.values.cost ?? 0);
    }
    return [...cells.values()].sort(
      (a, b) =>
        a.bucket - b.bucket || cmp(a.customer ?? "", b.customer ?? "") || cmp(a.dimensions, b.dimensions),
    );
  }

  async scanUsage(
    workspaceId: string,
    scan: EventScan,
    visitEvent: (event: UsageEvent, seq: number) => void,
    visitRollup: (row: UsageRollupRow) => void,
  ): Promise<{ asOfSeq: number }> {
    const asOfSeq = this.eventSeq;
    const ws = this.spaces.get(workspaceId);
    if (!ws) return { asOfSeq };
    const types = scan.types && new Set(scan.types);
    for (const [customer, before] of ws.horizons) {
      if (scan.customer !== undefined && customer !== scan.customer) continue;
      const to = Math.min(before, scan.to ?? Number.MAX_SAFE_INTEGER);
      const from = scan.from ?? Number.MIN_SAFE_INTEGER;
      for (const c of ws.hours.values()) {
        if (c.customer !== customer || c.bucket < from || c.bucket >= to) continue;
        if (types && !types.has(c.type)) continue;
        visitRollup({
          bucket: c.bucket,
          customer: c.customer,
          type: c.type,
          dimensions: { ...c.dimensions },
          events: c.events,
          values: { ...c.values },
        });
      }
    }
    for (const e of this.ordered(ws).slice()) {
      if (!matches(e.event, scan)) continue;
      const h = ws.horizons.get(e.event.customer);
      if (h !== undefined && e.event.timestamp < h) continue;
      const { priceRow: _, ...event } = copyEvent(e.event);
      visitEvent(event, e.seq);
    }
    return { asOfSeq };
  }

  async listWorkflowRuns(workspaceId: string, q: WorkflowRunQuery): Promise<WorkflowRunTotals[]> {
    const ws = this.spaces.get(workspaceId);
    if (!ws) return [];
    return [...ws.runs.values()]
      .filter(
        (r) =>
          r.workflow === q.workflow &&
          (q.from === undefined || r.first >= q.from) &&
          (q.to === undefined || r.first < q.to) &&
          (q.customer === undefined || r.customer === q.customer) &&
          (q.after === undefined ||
            r.first > q.after.startedAt ||
            (r.first === q.after.startedAt && r.run > q.after.run)),
      )
      .sort((a, b) => a.first - b.first || cmp(a.run, b.run))
      .slice(0, q.limit)
      .map((r) => ({
        run: r.run,
        customer: r.customer,
        events: r.events,
        steps: r.steps,
        tokensIn: r.tokensIn,
        tokensOut: r.tokensOut,
        cost: r.cost,
        startedAt: r.first,
        endedAt: r.last,
      }));
  }

  async purgeEvents(workspaceId: string, customer: string, before: number) {
    const ws = this.spaces.get(workspaceId);
    if (!ws) return 0;
    if (before % HOUR_MS !== 0) throw new RangeError("a purge horizon is a whole hour");
    ws.horizons.set(customer, Math.max(before, ws.horizons.get(customer) ?? Number.MIN_SAFE_INTEGER));
    const keep: StoredEvent[] = [];
    let deleted = 0;
    for (const e of ws.events) {
      if (e.event.customer === customer && e.event.timestamp < before) {
        ws.byId.delete(e.event.id);
        deleted++;
      } else keep.push(e);
    }
    ws.events = keep;
    return deleted;
  }

  async rebuildRollups() {
    let events = 0;
    for (const ws of this.spaces.values()) {
      // Hours (and runs) before a purge horizon keep their rows: their raw events are gone.
      for (const [key, c] of ws.hours) {
        const h = ws.horizons.get(c.customer);
        if (h === undefined || c.bucket >= h) ws.hours.delete(key);
      }
      for (const [key, r] of ws.runs) {
        const h = ws.horizons.get(r.customer);
        if (h === undefined || r.first >= h) ws.runs.delete(key);
      }
      for (const e of ws.events) {
        const h = ws.horizons.get(e.event.customer);
        if (h !== undefined && e.event.timestamp < h) continue;
        this.addRollups(ws, e.event);
        events++;
      }
    }
    return { events };
  }

  async updateEventValues(
    workspaceId: string,
    updates: { id: string; values: Record<string, number>; priceRow: string | null }[],
  ) {
    const ws = this.space(workspaceId);
    let changed = 0;
    for (const u of updates) {
      const e = ws.byId.get(u.id);
      if (!e) continue;
      e.event.values = { ...u.values };
      if (u.priceRow === null) delete e.event.priceRow;
      else e.event.priceRow = u.priceRow;
      changed++;
    }
    return changed;
  }

  private addRollups(ws: WorkspaceState, e: UsageEvent): void {
    const { run, ...rest } = e.dimensions;
    const dims = canonicalFlat(rest);
    const bucket = Math.floor(e.timestamp / HOUR_MS) * HOUR_MS;
    const key = `${bucket}\u0000${e.customer}\u0000${e.type}\u0000${dims}`;
    let cell = ws.hours.get(key);
    if (!cell) {
      cell = { bucket, customer: e.customer, type: e.type, dims, dimensions: rest, events: 0, values: {} };
      ws.hours.set(key, cell);
    }
    cell.events++;
    for (const k in e.values) cell.values[k] = (cell.values[k] ?? 0) + e.values[k]!;
    const workflow = e.dimensions.workflow;
    if (run !== undefined && workflow !== undefined) {
      const rk = `${workflow}\u0000${run}`;
      let r = ws.runs.get(rk);
      if (!r) {
        r = {
          workflow,
          run,
          customer: e.customer,
          events: 0n,
          steps: 0n,
          tokensIn: 0n,
          tokensOut: 0n,
          cost: 0n,
          first: e.timestamp,
          last: e.timestamp,
        };
        ws.runs.set(rk, r);
      }
      r.events++;
      r.steps += BigInt(e.values.steps ?? 0);
      r.tokensIn += BigInt(e.values.tokens_in ?? 0);
      r.tokensOut += BigInt(e.values.tokens_out ?? 0);
      r.cost += BigInt(e.values.cost ?? 0);
      r.first = Math.min(r.first, e.timestamp);
      r.last = Math.max(r.last, e.timestamp);
    }
  }

  // ---- alerts and webhooks ----------------------------------------------------------------------

  async insertAlert(workspaceId: string, alert: Alert, deliveries: NewDelivery[], now: number) {
    this.writable();
    const ws = this.space(workspaceId);
    if (ws.alertIds.has(alert.id)) return false;
    ws.alertIds.add(alert.id);
    this.options.onAlert?.(workspaceId, clone(alert));
    if (!this.retainAlerts) return true;
    ws.alerts.push({ seq: ++this.alertSeq, alert: clone(alert) });
    for (const d of deliveries) {
      ws.deliveries.set(d.id, {
        seq: ++this.deliverySeq,
        attempts: [],
        delivery: {
          id: d.id,
          webhookId: d.webhookId,
          alertId: alert.id,
          eventType: alert.type,
          state: "pending",
          attempts: 0,
          roundStartAttempts: 0,
          roundStartedAt: now,
          nextAttemptAt: now,
          lastStatus: null,
          lastLatencyMs: null,
          lastError: null,
          deliveredAt: null,
          createdAt: now,
          updatedAt: now,
        },
      });
    }
    return true;
  }

  async listAlerts(
    workspaceId: string,
    q: { type?: string; customer?: string; before?: number; limit: number },
  ) {
    const ws = this.spaces.get(workspaceId);
    if (!ws) return [];
    const out: { seq: number; alert: Alert }[] = [];
    for (let i = ws.alerts.length - 1; i >= 0 && out.length < q.limit; i--) {
      const a = ws.alerts[i]!;
      if (q.before !== undefined && a.seq >= q.before) continue;
      if (q.type !== undefined && a.alert.type !== q.type) continue;
      if (q.customer !== undefined && a.alert.customer !== q.customer) continue;
      out.push({ seq: a.seq, alert: clone(a.alert) });
    }
    return out;
  }

  async putWebhook(workspaceId: string, webhook: WebhookRecord) {
    const ws = this.space(workspaceId);
    const before = ws.webhooks.get(webhook.id);
    ws.webhooks.set(webhook.id, { ...clone(webhook), createdAt: before?.createdAt ?? webhook.createdAt });
  }

  async getWebhook(workspaceId: string, id: string) {
    const w = this.spaces.get(workspaceId)?.webhooks.get(id);
    return w && clone(w);
  }

  async listWebhooks(workspaceId: string) {
    const ws = this.spaces.get(workspaceId);
    if (!ws) return [];
    return [...ws.webhooks.values()].sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id)).map(clone);
  }

  async deleteWebhook(workspaceId: string, id: string, now: number) {
    const ws = this.spaces.get(workspaceId);
    if (!ws?.webhooks.delete(id)) return false;
    for (const d of ws.deliveries.values()) {
      if (d.delivery.webhookId === id && d.delivery.state === "pending") {
        d.delivery.state = "cancelled";
        d.delivery.nextAttemptAt = null;
        d.delivery.updatedAt = now;
      }
    }
    return true;
  }

  async dueDeliveries(now: number, limit: number): Promise<DueDelivery[]> {
    const due: (DueDelivery & { seq: number })[] = [];
    for (const [workspaceId, ws] of this.spaces) {
      for (const d of ws.deliveries.values()) {
        const x = d.delivery;
        if (x.state !== "pending" || x.nextAttemptAt === null || x.nextAttemptAt > now) continue;
        const hook = ws.webhooks.get(x.webhookId);
        const alert = ws.alerts.find((a) => a.alert.id === x.alertId)?.alert;
        if (!hook || !alert) continue;
        const secrets =
          hook.previousSecret !== null && hook.previousSecretUntil !== null && hook.previousSecretUntil > now
            ? [hook.secret, hook.previousSecret]
            : [hook.secret];
        due.push({
          seq: d.seq,
          workspaceId,
          delivery: { ...x },
          alert: clone(alert),
          url: hook.url,
          secrets,
        });
      }
    }
    due.sort((a, b) => a.delivery.nextAttemptAt! - b.delivery.nextAttemptAt! || a.seq - b.seq);
    return due.slice(0, limit).map(({ seq: _, ...d }) => d);
  }

  async saveAttempt(
    workspaceId: string,
    deliveryId: string,
    attempt: DeliveryAttempt,
    next: { state: DeliveryState; nextAttemptAt: number | null },
  ) {
    const ws = this.space(workspaceId);
    const d = ws.deliveries.get(deliveryId);
    if (!d) return;
    const i = d.attempts.findIndex((a) => a.attempt === attempt.attempt);
    if (i >= 0) d.attempts[i] = { ...attempt };
    else {
      d.attempts.push({ ...attempt });
      d.attempts.sort((a, b) => a.attempt - b.attempt);
    }
    // Only a pending delivery moves: one cancelled (endpoint deleted) meanwhile stays cancelled.
    const x = d.delivery;
    if (x.state !== "pending") return;
    x.state = next.state;
    x.attempts = Math.max(x.attempts, attempt.attempt);
    x.nextAttemptAt = next.nextAttemptAt;
    x.lastStatus = attempt.status;
    x.lastLatencyMs = attempt.latencyMs;
    x.lastError = attempt.error;
    if (next.state === "delivered") x.deliveredAt = attempt.at;
    x.updatedAt = attempt.at;
  }

  async listDeliveries(
    workspaceId: string,
    webhookId: string,
    q: { state?: DeliveryState; before?: number; limit: number },
  ) {
    const ws = this.spaces.get(workspaceId);
    if (!ws) return [];
    return [...ws.deliveries.values()]
      .filter(
        (d) =>
          d.delivery.webhookId === webhookId &&
          (q.state === undefined || d.delivery.state === q.state) &&
          (q.before === undefined || d.seq < q.before),
      )
      .sort((a, b) => b.seq - a.seq)
      .slice(0, q.limit)
      .map((d) => ({ seq: d.seq, delivery: { ...d.delivery }, attempts: d.attempts.map((a) => ({ ...a })) }));
  }

  async requeueDelivery(workspaceId: string, webhookId: string, deliveryId: string, now: number) {
    const d = this.spaces.get(workspaceId)?.deliveries.get(deliveryId);
    if (!d || d.delivery.webhookId !== webhookId) return undefined;
    const x = d.delivery;
    x.state = "pending";
    x.nextAttemptAt = now;
    x.roundStartAttempts = x.attempts;
    x.roundStartedAt = now;
    x.updatedAt = now;
    return { ...x };
  }

  async close() {
    this.closed = true;
  }

  // ---- internals --------------------------------------------------------------------------------

  private newSpace(workspace: Workspace): WorkspaceState {
    return {
      workspace,
      records: new Map(),
      events: [],
      sorted: true,
      byId: new Map(),
      ledgers: new Map(),
      ledgerKeys: new Map(),
      reservations: new Map(),
      hours: new Map(),
      runs: new Map(),
      horizons: new Map(),
      alerts: [],
      alertIds: new Set(),
      webhooks: new Map(),
      deliveries: new Map(),
    };
  }

  private space(workspaceId: string): WorkspaceState {
    const ws = this.spaces.get(workspaceId);
    if (!ws) throw new Error(`unknown workspace ${workspaceId}`);
    return ws;
  }

  private writable(): void {
    if (this.closed) throw new Error("the store is closed");
  }

  private ordered(ws: WorkspaceState): StoredEvent[] {
    if (!ws.sorted) {
      ws.events.sort((a, b) => a.event.timestamp - b.event.timestamp || a.seq - b.seq);
      ws.sorted = true;
    }
    return ws.events;
  }
}

function matches(e: UsageEvent, scan: EventScan): boolean {
  if (scan.customer !== undefined && e.customer !== scan.customer) return false;
  if (scan.from !== undefined && e.timestamp < scan.from) return false;
  if (scan.to !== undefined && e.timestamp >= scan.to) return false;
  if (scan.types !== undefined && !scan.types.includes(e.type)) return false;
  return true;
}

function copyEvent(e: UsageEvent): UsageEvent {
  const out: UsageEvent = {
    id: e.id,
    type: e.type,
    customer: e.customer,
    timestamp: e.timestamp,
    values: { ...e.values },
    dimensions: { ...e.dimensions },
  };
  if (e.priceRow !== undefined) out.priceRow = e.priceRow;
  return out;
}

function clone<T>(value: T): T {
  return value === undefined ? value : structuredClone(value);
}

function cloneRecord(r: StoredRecord): StoredRecord {
  return { id: r.id, body: clone(r.body), createdAt: r.createdAt, updatedAt: r.updatedAt };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
