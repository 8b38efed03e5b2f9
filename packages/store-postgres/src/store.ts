import { createHash } from "node:crypto";
import type {
  Alert,
  ApiKeyRecord,
  AppendResult,
  EventPage,
  EventPageScan,
  EventScan,
  EventToStore,
  LedgerEntry,
  LedgerLock,
  NewDelivery,
  RecordKind,
  ReservationRecord,
  RollupQuery,
  RollupTotals,
  Store,
  StoredRecord,
  UsageEvent,
  UsageRollupRow,
  WebhookRecord,
  WorkflowRunQuery,
  WorkflowRunTotals,
  Workspace,
} from "@tollgate/core";
import { canonicalFlat, TollgateError } from "@tollgate/core";
import pg from "pg";
import { PostgresAlerts } from "./alerts.js";
import { migrate, quoteIdent } from "./migrate.js";
import * as reports from "./reports.js";
import { type EventRow, toEvent } from "./reports.js";
import { RollupBatch } from "./rollups.js";

export interface PostgresStoreOptions {
  /** @example "postgres://tollgate@127.0.0.1:5432/tollgate" */
  url: string;
  /**
   * Schema that holds Tollgate's tables (created if missing).
   * @default "tollgate"
   */
  schema?: string;
  /**
   * Connections per process (reads plus the one group-commit writer at a time).
   * @default 8
   */
  poolSize?: number;
}

type EventsWrite = { kind: "events"; ws: number; events: EventToStore[] };
type ReservationWrite = {
  kind: "reservation";
  ws: number;
  id: string;
  state: string;
  expiresAt: number;
  updatedAt: number;
  body: string;
};
type LedgerWrite = { kind: "ledger"; ws: number; customer: string; entries: LedgerEntry[] };
type Write = EventsWrite | ReservationWrite | LedgerWrite;
type WriteResult = AppendResult | null;

interface Pending {
  write: Write;
  afterCommit?: (inserted: number[], commitSeq: number) => void;
  resolve: (r: WriteResult) => void;
  reject: (e: unknown) => void;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The shared durable store: PostgreSQL. Same behaviour as the embedded SQLite store:
 * - Event appends and reservations from concurrent requests are grouped into one transaction (group
 *   commit) and acknowledged after COMMIT (synchronous_commit, so acknowledged = durable). One flush
 *   is in flight per process; whatever arrives meanwhile forms the next group. Each request's batch is
 *   its own savepoint, so one request's conflict rolls back only that request. Each batch is one
 *   multi-row INSERT … ON CONFLICT DO NOTHING.
 * - Commit sequence: a flush that appends events first bumps the single `commit_seq` row. Its row
 *   lock orders such commits across every process sharing the database (and the events' seqs with
 *   them), the events carry the number, and a REPEATABLE READ scan reads the row in its snapshot, so
 *   `asOfSeq` names exactly the commits the scan saw (the contract of Store.scanEvents).
 * - Rollups and ledger entries that come with events are written in the same transaction, for newly
 *   stored events only.
 */
export class PostgresStore implements Store {
  readonly capabilities = { durable: true, shared: true } as const;
  readonly pool: pg.Pool;
  /**
   * Connections that hold a customer's ledger lock (lockLedger), apart from `pool`: a lock holder
   * waits for work (the limiter's reads, the group commit) that needs a `pool` connection, so lock
   * holders must never be able to take all of them.
   */
  private readonly lockPool: pg.Pool;
  readonly schema: string;
  private readonly wsSeq = new Map<string, number>();
  private pending: Pending[] = [];
  private inFlight: Promise<void> | null = null;
  private flushScheduled = false;
  private closed = false;
  private readonly alerts: PostgresAlerts;
  /** Snapshot reads in flight (scanEvents, scanUsage): see flushGroup. */
  private readonly scans = new Set<Promise<unknown>>();

  private constructor(options: PostgresStoreOptions, schema: string) {
    this.schema = schema;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 8,
      options: `-c search_path=${schema}`,
      connectionTimeoutMillis: 5000,
      types: {
        // bigint columns hold epoch ms and sequences: safe integers, returned as numbers.
        getTypeParser: ((oid: number, format?: string) =>
          oid === 20
            ? Number
            : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
      },
    });
    this.lockPool = new pg.Pool({
      connectionString: options.url,
      max: 4,
      options: `-c search_path=${schema}`,
      connectionTimeoutMillis: 5000,
    });
    // An idle connection that the server dropped must not crash the process; the next query reconnects.
    this.pool.on("error", () => {});
    this.lockPool.on("error", () => {});
    this.alerts = new PostgresAlerts(this.pool, (fn) => this.tx(fn));
  }

  /** Connects, applies migrations (under an advisory lock) and loads the workspace ids. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? "tollgate";
    if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${schema}`);
    const store = new PostgresStore(options, schema);
    try {
      const client = await store.pool.connect();
      try {
        await migrate(client, schema);
      } finally {
        client.release();
      }
      const { rows } = await store.pool.query<WsRow>("SELECT seq, id, created_at FROM workspaces");
      for (const row of rows) store.wsSeq.set(row.id, row.seq);
    } catch (error) {
      await store.pool.end().catch(() => {});
      await store.lockPool.end().catch(() => {});
      throw error;
    }
    return store;
  }

  /** Drops the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(this.schema)} CASCADE`);
  }

  async ensureWorkspace(id: string, now: number): Promise<{ workspace: Workspace; created: boolean }> {
    const ins = await this.q<WsRow>(
      "INSERT INTO workspaces (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING seq, id, created_at",
      [id, now],
    );
    const row =
      ins.rows[0] ??
      (await this.q<WsRow>("SELECT seq, id, created_at FROM workspaces WHERE id = $1", [id])).rows[0]!;
    this.wsSeq.set(row.id, row.seq);
    return { workspace: toWorkspace(row), created: ins.rowCount === 1 };
  }

  async getWorkspace(id: string): Promise<Workspace | undefined> {
    const { rows } = await this.q<WsRow>("SELECT seq, id, created_at FROM workspaces WHERE id = $1", [id]);
    return rows[0] && toWorkspace(rows[0]);
  }

  async listWorkspaces(): Promise<Workspace[]> {
    const { rows } = await this.q<WsRow>("SELECT seq, id, created_at FROM workspaces ORDER BY seq");
    return rows.map(toWorkspace);
  }

  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    await this.q(
      `INSERT INTO api_keys (id, workspace_id, name, role, customer_id, prefix, hash, created_at, last_used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        key.id,
        key.workspaceId,
        key.name,
        key.role,
        key.customerId,
        key.prefix,
        key.hash,
        key.createdAt,
        key.lastUsedAt,
      ],
    );
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.q<KeyRow>("SELECT * FROM api_keys WHERE hash = $1", [hash]);
    return rows[0] && toKey(rows[0]);
  }

  async listApiKeys(workspaceId: string, filter: { customerId?: string | null }): Promise<ApiKeyRecord[]> {
    const { rows } =
      filter.customerId != null
        ? await this.q<KeyRow>(
            "SELECT * FROM api_keys WHERE workspace_id = $1 AND customer_id = $2 ORDER BY created_at, id",
            [workspaceId, filter.customerId],
          )
        : await this.q<KeyRow>(
            "SELECT * FROM api_keys WHERE workspace_id = $1 AND customer_id IS NULL ORDER BY created_at, id",
            [workspaceId],
          );
    return rows.map(toKey);
  }

  async deleteApiKey(workspaceId: string, id: string, customerId: string | null = null): Promise<boolean> {
    const r = await this.q(
      "DELETE FROM api_keys WHERE workspace_id = $1 AND id = $2 AND customer_id IS NOT DISTINCT FROM $3",
      [workspaceId, id, customerId],
    );
    return r.rowCount === 1;
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    await this.q("UPDATE api_keys SET last_used_at = $1 WHERE id = $2", [at, id]);
  }

  async putRecord<T>(
    workspaceId: string,
    kind: RecordKind,
    id: string,
    body: T,
    now: number,
  ): Promise<{ record: StoredRecord<T>; created: boolean }> {
    const ws = await this.ws(workspaceId);
    // xmax = 0 on the returned row: it was inserted, not updated.
    const { rows } = await this.q<{ created_at: number; inserted: boolean }>(
      `INSERT INTO records (ws, kind, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (ws, kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
       RETURNING created_at, (xmax = 0) AS inserted`,
      [ws, kind, id, JSON.stringify(body), now],
    );
    const row = rows[0]!;
    return { record: { id, body, createdAt: row.created_at, updatedAt: now }, created: row.inserted };
  }

  async getRecord<T>(
    workspaceId: string,
    kind: RecordKind,
    id: string,
  ): Promise<StoredRecord<T> | undefined> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return undefined;
    const { rows } = await this.q<RecRow>(
      "SELECT id, body, created_at, updated_at FROM records WHERE ws = $1 AND kind = $2 AND id = $3",
      [ws, kind, id],
    );
    return rows[0] && toRecord<T>(rows[0]);
  }

  async listRecords<T>(
    workspaceId: string,
    kind: RecordKind,
    page: { after?: string; limit: number },
  ): Promise<StoredRecord<T>[]> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return [];
    const { rows } = await this.q<RecRow>(
      `SELECT id, body, created_at, updated_at FROM records WHERE ws = $1 AND kind = $2 AND id > $3
       ORDER BY id LIMIT $4`,
      [ws, kind, page.after ?? "", page.limit],
    );
    return rows.map((r) => toRecord<T>(r));
  }

  async deleteRecord(workspaceId: string, kind: RecordKind, id: string): Promise<boolean> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return false;
    const r = await this.q("DELETE FROM records WHERE ws = $1 AND kind = $2 AND id = $3", [ws, kind, id]);
    return r.rowCount === 1;
  }

  async appendEvents(
    workspaceId: string,
    events: EventToStore[],
    afterCommit?: (inserted: number[], commitSeq: number) => void,
  ): Promise<AppendResult> {
    // Queued synchronously when the workspace is known, so a close() called next still flushes it.
    const ws = this.wsSeq.get(workspaceId) ?? (await this.ws(workspaceId));
    return (await this.enqueue({ kind: "events", ws, events }, afterCommit)) as AppendResult;
  }

  async saveReservation(workspaceId: string, reservation: ReservationRecord): Promise<void> {
    const ws = this.wsSeq.get(workspaceId) ?? (await this.ws(workspaceId));
    await this.enqueue({
      kind: "reservation",
      ws,
      id: reservation.id,
      state: reservation.state,
      expiresAt: reservation.expiresAt,
      updatedAt: Date.now(),
      body: JSON.stringify(reservation),
    });
  }

  async getReservation(workspaceId: string, id: string): Promise<ReservationRecord | undefined> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return undefined;
    const { rows } = await this.q<{ body: string }>(
      "SELECT body FROM reservations WHERE ws = $1 AND id = $2",
      [ws, id],
    );
    return rows[0] ? (JSON.parse(rows[0].body) as ReservationRecord) : undefined;
  }

  async listActiveReservations(): Promise<{ workspaceId: string; reservation: ReservationRecord }[]> {
    const { rows } = await this.q<{ workspace_id: string; body: string }>(
      `SELECT w.id AS workspace_id, r.body FROM reservations r JOIN workspaces w ON w.seq = r.ws
       WHERE r.state = 'active'`,
    );
    return rows.map((r) => ({
      workspaceId: r.workspace_id,
      reservation: JSON.parse(r.body) as ReservationRecord,
    }));
  }

  async purgeReservations(before: number): Promise<number> {
    const r = await this.q("DELETE FROM reservations WHERE state != 'active' AND updated_at < $1", [before]);
    return r.rowCount ?? 0;
  }

  async scanEvents(
    workspaceId: string,
    scan: EventScan,
    visit: (event: UsageEvent, seq: number) => void,
  ): Promise<{ asOfSeq: number }> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return { asOfSeq: 0 };
    const where = ["ws = $1"];
    const params: unknown[] = [ws];
    if (scan.customer !== undefined) {
      params.push(scan.customer);
      where.push(`customer = $${params.length}`);
    }
    if (scan.from !== undefined) {
      params.push(scan.from);
      where.push(`ts >= $${params.length}`);
    }
    if (scan.to !== undefined) {
      params.push(scan.to);
      where.push(`ts < $${params.length}`);
    }
    if (scan.types !== undefined) {
      params.push(scan.types);
      where.push(`type = ANY($${params.length}::text[])`);
    }
    return this.snapshot(async (client, asOfSeq) => {
      await reports.visitCursor<EventRow>(
        client,
        `SELECT seq, id, type, customer, ts, vals, dims, price_row FROM events
         WHERE ${where.join(" AND ")} ORDER BY ts, seq`,
        params,
        (row) => visit(toEvent(row), row.seq),
      );
      return { asOfSeq };
    });
  }

  /**
   * Runs `fn` in one REPEATABLE READ snapshot, given the commit sequence that snapshot holds (read
   * first: the snapshot is taken at the transaction's first query).
   */
  private snapshot<T>(fn: (client: pg.PoolClient, asOfSeq: number) => Promise<T>): Promise<T> {
    const p = this.snapshotTx(fn);
    this.scans.add(p);
    const done = () => this.scans.delete(p);
    p.then(done, done);
    return p;
  }

  private async snapshotTx<T>(fn: (client: pg.PoolClient, asOfSeq: number) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const seqRow = await client.query<{ seq: number }>("SELECT seq FROM commit_seq");
      const result = await fn(client, seqRow.rows[0]?.seq ?? 0);
      await client.query("COMMIT");
      client.release();
      return result;
    } catch (error) {
      client.release(true);
      throw isConnectionError(error) ? unavailable(error) : error;
    }
  }

  /** Runs `fn` in a read-write transaction. */
  private async tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      client.release();
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      client.release(true);
      throw isConnectionError(error) ? unavailable(error) : error;
    }
  }

  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (error) {
      throw isConnectionError(error) ? unavailable(error) : error;
    }
  }

  // ---- simulation: keyset pages for streaming replays -----------------------------------------------

  async pageEvents(workspaceId: string, scan: EventPageScan, limit: number): Promise<EventPage> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return { events: [], asOfSeq: 0 };
    return this.snapshot(async (client, current) => {
      const asOfSeq = scan.asOfSeq ?? current;
      const where = ["ws = $1", "commit_seq <= $2"];
      const params: unknown[] = [ws, asOfSeq];
      if (scan.customer !== undefined) {
        params.push(scan.customer);
        where.push(`customer = $${params.length}`);
      }
      if (scan.customers !== undefined) {
        params.push(scan.customers);
        where.push(`customer = ANY($${params.length}::text[])`);
      }
      if (scan.from !== undefined) {
        params.push(scan.from);
        where.push(`ts >= $${params.length}`);
      }
      if (scan.to !== undefined) {
        params.push(scan.to);
        where.push(`ts < $${params.length}`);
      }
      if (scan.types !== undefined) {
        params.push(scan.types);
        where.push(`type = ANY($${params.length}::text[])`);
      }
      if (scan.after !== undefined) {
        params.push(scan.after.timestamp, scan.after.seq);
        where.push(`(ts, seq) > ($${params.length - 1}, $${params.length})`);
      }
      params.push(limit);
      const { rows } = await client.query<EventRow>(
        `SELECT seq, id, type, customer, ts, vals, dims, price_row FROM events WHERE ${where.join(" AND ")}
         ORDER BY ts, seq LIMIT $${params.length}`,
        params,
      );
      return { events: rows.map((r) => ({ event: toEvent(r), seq: r.seq })), asOfSeq };
    });
  }

  // ---- balances (ledger) ------------------------------------------------------------------------

  async appendLedger(workspaceId: string, customer: string, entries: LedgerEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const ws = this.wsSeq.get(workspaceId) ?? (await this.ws(workspaceId));
    await this.enqueue({ kind: "ledger", ws, customer, entries });
  }

  async loadLedger(workspaceId: string, customer: string): Promise<LedgerEntry[]> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return [];
    const { rows } = await this.q<{ body: string }>(
      "SELECT body FROM ledger_entries WHERE ws = $1 AND customer = $2 ORDER BY seq",
      [ws, customer],
    );
    return rows.map((r) => JSON.parse(r.body) as LedgerEntry);
  }

  async listLedger(
    workspaceId: string,
    customer: string,
    page: { after?: number; limit: number },
  ): Promise<{ seq: number; entry: LedgerEntry }[]> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return [];
    const { rows } = await this.q<{ seq: number; body: string }>(
      "SELECT seq, body FROM ledger_entries WHERE ws = $1 AND customer = $2 AND seq > $3 ORDER BY seq LIMIT $4",
      [ws, customer, page.after ?? 0, page.limit],
    );
    return rows.map((r) => ({ seq: r.seq, entry: JSON.parse(r.body) as LedgerEntry }));
  }

  async lockLedger(workspaceId: string, customer: string): Promise<LedgerLock> {
    const ws = await this.ws(workspaceId);
    let client: pg.PoolClient;
    try {
      client = await this.lockPool.connect();
    } catch (error) {
      throw unavailable(error);
    }
    let open = true;
    const end = async (sql: "COMMIT" | "ROLLBACK") => {
      if (!open) return;
      open = false;
      try {
        await client.query(sql);
        client.release();
      } catch (error) {
        client.release(true);
        throw error;
      }
    };
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [String(ledgerLockKey(ws, customer))]);
    } catch (error) {
      await end("ROLLBACK").catch(() => {});
      throw isConnectionError(error) ? unavailable(error) : error;
    }
    return {
      since: async (after) => {
        const { rows } = await client.query<{ seq: string; body: string }>(
          "SELECT seq, body FROM ledger_entries WHERE ws = $1 AND customer = $2 AND seq > $3 ORDER BY seq",
          [ws, customer, after],
        );
        return rows.map((r) => ({ seq: Number(r.seq), entry: JSON.parse(r.body) as LedgerEntry }));
      },
      append: async (entries) => {
        if (!open) throw new Error("ledger lock already released");
        try {
          const seq = await insertLedger(
            client,
            ws,
            entries.map((e) => [customer, e] as const),
          );
          await end("COMMIT");
          return seq;
        } catch (error) {
          await end("ROLLBACK").catch(() => {});
          throw isConnectionError(error) ? unavailable(error) : error;
        }
      },
      release: () => end("ROLLBACK").catch(() => {}),
    };
  }

  async updateEventValues(
    workspaceId: string,
    updates: { id: string; values: Record<string, number>; priceRow: string | null }[],
  ): Promise<number> {
    const ws = await this.ws(workspaceId);
    if (updates.length === 0) return 0;
    const r = await this.q(
      `UPDATE events SET vals = u.vals, price_row = u.price_row
       FROM unnest($2::text[], $3::text[], $4::text[]) AS u(id, vals, price_row)
       WHERE events.ws = $1 AND events.id = u.id`,
      [
        ws,
        updates.map((u) => u.id),
        updates.map((u) => canonicalFlat(u.values)),
        updates.map((u) => u.priceRow),
      ],
    );
    return r.rowCount ?? 0;
  }

  // ---- reports (rollups, retention): see reports.ts ----------------------------------------------

  async queryRollups(workspaceId: string, query: RollupQuery): Promise<RollupTotals[]> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return [];
    return this.guard(reports.queryRollups(this.pool, ws, query));
  }

  async scanUsage(
    workspaceId: string,
    scan: EventScan,
    visitEvent: (event: UsageEvent, seq: number) => void,
    visitRollup: (row: UsageRollupRow) => void,
  ): Promise<{ asOfSeq: number }> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return { asOfSeq: 0 };
    return this.snapshot(async (client, asOfSeq) => {
      await reports.scanUsage(client, ws, scan, visitEvent, visitRollup);
      return { asOfSeq };
    });
  }

  async listWorkflowRuns(workspaceId: string, query: WorkflowRunQuery): Promise<WorkflowRunTotals[]> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return [];
    return this.guard(reports.listWorkflowRuns(this.pool, ws, query));
  }

  async purgeEvents(workspaceId: string, customer: string, before: number): Promise<number> {
    const ws = await this.wsMaybe(workspaceId);
    if (ws === undefined) return 0;
    return this.guard(reports.purgeEvents(this.pool, ws, customer, before));
  }

  async rebuildRollups(): Promise<{ events: number }> {
    const client = await this.connect();
    try {
      return await reports.rebuildRollups(client);
    } finally {
      client.release();
    }
  }

  // ---- alerts and webhooks: see alerts.ts ----------------------------------------------------------

  async insertAlert(workspaceId: string, alert: Alert, deliveries: NewDelivery[], now: number) {
    return this.alerts.insertAlert(await this.ws(workspaceId), alert, deliveries, now);
  }
  async listAlerts(workspaceId: string, q: Parameters<Store["listAlerts"]>[1]) {
    const ws = await this.wsMaybe(workspaceId);
    return ws === undefined ? [] : this.alerts.listAlerts(ws, q);
  }
  async putWebhook(workspaceId: string, webhook: WebhookRecord) {
    await this.alerts.putWebhook(await this.ws(workspaceId), webhook);
  }
  async getWebhook(workspaceId: string, id: string) {
    const ws = await this.wsMaybe(workspaceId);
    return ws === undefined ? undefined : this.alerts.getWebhook(ws, id);
  }
  async listWebhooks(workspaceId: string) {
    const ws = await this.wsMaybe(workspaceId);
    return ws === undefined ? [] : this.alerts.listWebhooks(ws);
  }
  async deleteWebhook(workspaceId: string, id: string, now: number) {
    const ws = await this.wsMaybe(workspaceId);
    return ws === undefined ? false : this.alerts.deleteWebhook(ws, id, now);
  }
  async dueDeliveries(now: number, limit: number) {
    return this.guard(this.alerts.dueDeliveries(now, limit));
  }
  async saveAttempt(workspaceId: string, deliveryId: string, ...rest: DeliveryUpdate) {
    await this.alerts.saveAttempt(await this.ws(workspaceId), deliveryId, ...rest);
  }
  async listDeliveries(workspaceId: string, webhookId: string, q: Parameters<Store["listDeliveries"]>[2]) {
    const ws = await this.wsMaybe(workspaceId);
    return ws === undefined ? [] : this.alerts.listDeliveries(ws, webhookId, q);
  }
  async requeueDelivery(workspaceId: string, webhookId: string, deliveryId: string, now: number) {
    const ws = await this.wsMaybe(workspaceId);
    return ws === undefined ? undefined : this.alerts.requeueDelivery(ws, webhookId, deliveryId, now);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Everything acknowledged or queued is committed before the pool closes.
    while (this.inFlight || this.pending.length > 0 || this.flushScheduled) {
      if (this.inFlight) await this.inFlight;
      else await new Promise((r) => setImmediate(r));
    }
    this.closed = true;
    await Promise.all([this.pool.end(), this.lockPool.end()]);
  }

  // ---- group commit ------------------------------------------------------------------------------

  private enqueue(write: Write, afterCommit?: Pending["afterCommit"]): Promise<WriteResult> {
    if (this.closed) return Promise.reject(new TollgateError("UNAVAILABLE", "the store is closing"));
    return new Promise((resolve, reject) => {
      this.pending.push({ write, afterCommit, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.flushScheduled || this.pending.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.inFlight = this.flushGroup().finally(() => {
        this.inFlight = null;
        this.schedule();
      });
    });
  }

  private async flushGroup(): Promise<void> {
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    let outcome: { results: WriteResult[]; commitSeq: number };
    try {
      outcome = await this.flush(group.map((p) => p.write));
    } catch (error) {
      for (const p of group) p.reject(unavailable(error));
      return;
    }
    // A scan whose snapshot began before this commit (and so misses it) may still be running; a
    // cache built from it must be in place before afterCommit looks for it, or the commit would be
    // applied to neither. (The embedded store's scans are synchronous, so there no scan straddles an
    // afterCommit.) Wait for those scans, then one macrotask for their callers to register the cache.
    if (this.scans.size > 0 && group.some((p) => p.afterCommit)) {
      await Promise.allSettled([...this.scans]);
      await new Promise((r) => setImmediate(r));
    }
    // Counters learn of new events before any awaiting code runs and could look at them.
    for (let i = 0; i < group.length; i++) {
      const p = group[i]!;
      const r = outcome.results[i];
      if (p.afterCommit && r?.ok) p.afterCommit(r.inserted, outcome.commitSeq);
    }
    for (let i = 0; i < group.length; i++) group[i]!.resolve(outcome.results[i]!);
  }

  private async flush(writes: Write[]): Promise<{ results: WriteResult[]; commitSeq: number }> {
    const client = await this.connect();
    let ok = false;
    try {
      await client.query("BEGIN");
      const results: WriteResult[] = [];
      // Rollups of the events this flush newly inserts, written in the same transaction.
      const rollups = new RollupBatch();
      let commitSeq = 0;
      if (writes.some((w) => w.kind === "events")) {
        // First: the row lock orders every event-appending commit, in every process, by this number
        // (event seqs too, since only lock holders insert events), and stamps the events with it.
        const r = await client.query<{ seq: number }>("UPDATE commit_seq SET seq = seq + 1 RETURNING seq");
        commitSeq = r.rows[0]!.seq;
      }
      // Then the ledger locks of every customer whose ledger this flush appends to (lockLedger), in
      // one order (sorted keys), so that two flushes never wait for each other's.
      const locks = new Set<bigint>();
      for (const w of writes) {
        if (w.kind === "ledger") locks.add(ledgerLockKey(w.ws, w.customer));
        else if (w.kind === "events")
          for (const e of w.events) if (e.ledger?.length) locks.add(ledgerLockKey(w.ws, e.event.customer));
      }
      if (locks.size > 0) {
        const sorted = [...locks].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
        // unnest yields the array in order, and the aggregate takes the locks row by row in that order.
        await client.query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k", [sorted]);
      }
      for (const w of writes) {
        if (w.kind === "ledger") {
          await insertLedger(
            client,
            w.ws,
            w.entries.map((e) => [w.customer, e] as const),
          );
          results.push(null);
        } else if (w.kind === "reservation") {
          await client.query(
            `INSERT INTO reservations (ws, id, state, expires_at, updated_at, body) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (ws, id) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at,
             updated_at = excluded.updated_at, body = excluded.body`,
            [w.ws, w.id, w.state, w.expiresAt, w.updatedAt, w.body],
          );
          results.push(null);
        } else {
          const r = await appendBatch(client, w, commitSeq);
          if (r.ok) {
            for (const i of r.inserted) {
              const e = w.events[i]!;
              rollups.add(
                w.ws,
                e.event.type,
                e.event.customer,
                e.event.timestamp,
                e.valuesJson,
                e.dimensionsJson,
              );
            }
          }
          results.push(r);
        }
      }
      await rollups.write(client);
      await client.query("COMMIT");
      ok = true;
      return { results, commitSeq };
    } finally {
      if (ok) client.release();
      else {
        await client.query("ROLLBACK").catch(() => {});
        client.release(true);
      }
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw unavailable(error);
    }
  }

  private async q<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (error) {
      if (isConnectionError(error)) throw unavailable(error);
      throw error;
    }
  }

  private async wsMaybe(workspaceId: string): Promise<number | undefined> {
    const seq = this.wsSeq.get(workspaceId);
    if (seq !== undefined) return seq;
    // Another process may have created it.
    const { rows } = await this.q<WsRow>("SELECT seq, id, created_at FROM workspaces WHERE id = $1", [
      workspaceId,
    ]);
    if (rows[0]) this.wsSeq.set(workspaceId, rows[0].seq);
    return rows[0]?.seq;
  }

  private async ws(workspaceId: string): Promise<number> {
    const seq = await this.wsMaybe(workspaceId);
    if (seq === undefined) throw new Error(`unknown workspace ${workspaceId}`);
    return seq;
  }
}

/**
 * One request's events, all or nothing (a savepoint). Repeated ids within the batch are resolved
 * here in order, like the embedded store does row by row: the first occurrence is inserted (or meets
 * the stored row), later ones are duplicates with an equal fingerprint and conflicts otherwise.
 */
async function appendBatch(client: pg.PoolClient, w: EventsWrite, commitSeq: number): Promise<AppendResult> {
  const n = w.events.length;
  const fps = w.events.map((e) => fingerprintHash(e.fingerprint));
  const first = new Map<string, number>();
  const cols = { id: [] as string[], type: [] as string[], customer: [] as string[], ts: [] as number[] };
  const vals: string[] = [];
  const dims: string[] = [];
  const fp: string[] = [];
  const priceRows: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const e = w.events[i]!;
    if (first.has(e.event.id)) continue;
    first.set(e.event.id, i);
    cols.id.push(e.event.id);
    cols.type.push(e.event.type);
    cols.customer.push(e.event.customer);
    cols.ts.push(e.event.timestamp);
    vals.push(e.valuesJson);
    dims.push(e.dimensionsJson);
    fp.push(fps[i]!);
    priceRows.push(e.priceRow ?? null);
  }
  await client.query("SAVEPOINT batch");
  const ins = await client.query<{ id: string }>(
    `INSERT INTO events (ws, id, type, customer, ts, vals, dims, fp, price_row, commit_seq)
     SELECT $1, u.id, u.type, u.customer, u.ts, u.vals, u.dims, u.fp, u.price_row, $10
     FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
       WITH ORDINALITY AS u(id, type, customer, ts, vals, dims, fp, price_row, ord)
     ORDER BY u.ord
     ON CONFLICT (ws, id) DO NOTHING RETURNING id`,
    [w.ws, cols.id, cols.type, cols.customer, cols.ts, vals, dims, fp, priceRows, commitSeq],
  );
  const insertedIds = new Set(ins.rows.map((r) => r.id));
  const existing = new Map<string, string>();
  const missing = cols.id.filter((id) => !insertedIds.has(id));
  if (missing.length > 0) {
    const { rows } = await client.query<{ id: string; fp: string }>(
      "SELECT id, fp FROM events WHERE ws = $1 AND id = ANY($2::text[])",
      [w.ws, missing],
    );
    for (const r of rows) existing.set(r.id, r.fp);
  }
  const inserted: number[] = [];
  let duplicates = 0;
  for (let i = 0; i < n; i++) {
    const id = w.events[i]!.event.id;
    const f = first.get(id)!;
    let storedFp: string | undefined;
    if (f === i) {
      if (insertedIds.has(id)) {
        inserted.push(i);
        continue;
      }
      storedFp = existing.get(id);
    } else {
      storedFp = fps[f];
    }
    if (storedFp !== fps[i]) {
      await client.query("ROLLBACK TO SAVEPOINT batch");
      return { ok: false, conflictIndex: i, id };
    }
    duplicates++;
  }
  // Ledger entries that come with events (debit rules' usage) are stored only for new events.
  const ledger: (readonly [string, LedgerEntry])[] = [];
  for (const i of inserted) {
    const e = w.events[i]!;
    for (const entry of e.ledger ?? []) ledger.push([e.event.customer, entry]);
  }
  if (ledger.length > 0) await insertLedger(client, w.ws, ledger);
  await client.query("RELEASE SAVEPOINT batch");
  return { ok: true, accepted: inserted.length, duplicates, inserted };
}

/** Appends ledger entries in order; an idempotency key the customer's ledger holds already is skipped. */
async function insertLedger(
  client: pg.PoolClient,
  ws: number,
  entries: (readonly [string, LedgerEntry])[],
): Promise<number> {
  if (entries.length === 0) return 0;
  const r = await client.query<{ seq: string }>(
    `INSERT INTO ledger_entries (ws, customer, idempotency_key, kind, at, body)
     SELECT $1, u.customer, u.key, u.kind, u.at, u.body
     FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) WITH ORDINALITY
       AS u(customer, key, kind, at, body, ord)
     ORDER BY u.ord
     ON CONFLICT DO NOTHING
     RETURNING seq`,
    [
      ws,
      entries.map(([c]) => c),
      entries.map(([, e]) => (e.kind === "minimum_balance" ? null : e.idempotencyKey)),
      entries.map(([, e]) => e.kind),
      entries.map(([, e]) => e.at),
      entries.map(([, e]) => JSON.stringify(e)),
    ],
  );
  let last = 0;
  for (const row of r.rows) last = Math.max(last, Number(row.seq));
  return last;
}

/**
 * The advisory-lock key of a customer's ledger (lockLedger): 64 bits of a hash of the workspace and
 * customer. Two customers sharing a key only wait for each other.
 */
function ledgerLockKey(ws: number, customer: string): bigint {
  return createHash("sha1").update(`${ws}\u0000${customer}`).digest().readBigInt64BE(0);
}

const fingerprintHash = (fp: string) => createHash("sha256").update(fp).digest("hex").slice(0, 32);

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  if (typeof code !== "string")
    return error instanceof Error && /Connection terminated|timeout/i.test(error.message);
  // Node socket errors, and PostgreSQL's class 08 (connection exception) and 57P (operator intervention).
  return code.startsWith("E") || code.startsWith("08") || code.startsWith("57P");
}

type DeliveryUpdate = Parameters<Store["saveAttempt"]> extends [string, string, ...infer R] ? R : never;

interface WsRow {
  seq: number;
  id: string;
  created_at: number;
}
interface KeyRow {
  id: string;
  workspace_id: string;
  name: string;
  role: ApiKeyRecord["role"];
  customer_id: string | null;
  prefix: string;
  hash: string;
  created_at: number;
  last_used_at: number | null;
}
interface RecRow {
  id: string;
  body: string;
  created_at: number;
  updated_at: number;
}
const toWorkspace = (r: WsRow): Workspace => ({ id: r.id, name: r.id, createdAt: r.created_at });
const toKey = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  workspaceId: r.workspace_id,
  name: r.name,
  role: r.role,
  customerId: r.customer_id,
  prefix: r.prefix,
  hash: r.hash,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});
const toRecord = <T>(r: RecRow): StoredRecord<T> => ({
  id: r.id,
  body: JSON.parse(r.body) as T,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

function unavailable(error: unknown): TollgateError {
  if (error instanceof TollgateError) return error;
  return new TollgateError("UNAVAILABLE", "the store is unreachable right now", {
    reason: error instanceof Error ? error.message : String(error),
  });
}
