import type {
  EventScan,
  RollupQuery,
  RollupTotals,
  UsageEvent,
  UsageRollupRow,
  WorkflowRunQuery,
  WorkflowRunTotals,
} from "@tollgate/core";
import type Database from "better-sqlite3";
import { EVENT_COLUMNS, eventFilter } from "./page-query.js";
import { HOUR_MS, prepareRollupStatements, RollupBatch, registerRollupFunctions } from "./rollups.js";

/** Events read per chunk by rebuildRollups (better-sqlite3 cannot write while a cursor is open). */
const REBUILD_CHUNK_EVENTS = 50_000;
/** Events deleted per transaction by a purge, so that the writer thread never waits long. */
const PURGE_CHUNK_EVENTS = 5_000;

interface EventRow {
  seq: number;
  id: string;
  type: string;
  customer: string;
  ts: number;
  vals: string;
  dims: string;
}

/**
 * The report side of the embedded store (migrations/003_rollups.sql): reads of the rollup tables the
 * writer maintains, quota loading past retention, retention purges and rollup rebuilds. Runs on the
 * store's main connection.
 */
export class SqliteReports {
  private readonly cache = new Map<string, Database.Statement>();
  private readonly stmt;

  constructor(
    private readonly db: Database.Database,
    private readonly wsOf: (workspaceId: string) => number | undefined,
  ) {
    registerRollupFunctions(db);
    this.stmt = {
      horizons: db.prepare("SELECT customer, before FROM purge_horizons WHERE ws = ?"),
      horizon: db.prepare("SELECT before FROM purge_horizons WHERE ws = ? AND customer = ?").pluck(),
      setHorizon: db.prepare(
        `INSERT INTO purge_horizons (ws, customer, before) VALUES (?, ?, ?)
         ON CONFLICT (ws, customer) DO UPDATE SET before = max(before, excluded.before)`,
      ),
      purge: db.prepare(
        `DELETE FROM events WHERE seq IN
           (SELECT seq FROM events WHERE ws = ? AND customer = ? AND ts < ? LIMIT ${PURGE_CHUNK_EVENTS})`,
      ),
      maxSeq: db.prepare("SELECT coalesce(max(seq), 0) FROM events").pluck(),
    };
  }

  private prepared(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  queryRollups(workspaceId: string, q: RollupQuery): RollupTotals[] {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined || q.from >= q.to) return [];
    const table = q.resolution === "hour" ? "rollup_hour" : "rollup_day";
    const where = ["ws = ?", "bucket >= ?", "bucket < ?"];
    const params: unknown[] = [ws, q.from, q.to];
    if (q.customer !== undefined) {
      where.push("customer = ?");
      params.push(q.customer);
    }
    if (q.types !== undefined) {
      where.push(`type IN (${q.types.map(() => "?").join(",")})`);
      params.push(...q.types);
    }
    // Without buckets, the range's start stands in for them (a constant: SQLite groups by dims only).
    const bucket = q.byBucket === false ? "? AS bucket" : "bucket";
    if (q.byBucket === false) params.unshift(q.from);
    const keys = q.byCustomer ? `${bucket}, customer, dims` : `${bucket}, dims`;
    const groupKeys = q.byBucket === false ? keys.slice(keys.indexOf(",") + 2) : keys;
    const sums = "sum(events), sum(tokens_in), sum(tokens_out), sum(steps), sum(cost)";
    const sql = `SELECT ${keys}, ${sums} FROM ${table} WHERE ${where.join(" AND ")} GROUP BY ${groupKeys} ORDER BY bucket`;
    const toTotals = (r: unknown[]): RollupTotals => {
      const c = q.byCustomer ? 1 : 0;
      return {
        bucket: Number(r[0]),
        customer: q.byCustomer ? (r[1] as string) : null,
        dimensions: r[1 + c] as string,
        events: r[2 + c] as bigint,
        tokensIn: r[3 + c] as bigint,
        tokensOut: r[4 + c] as bigint,
        steps: r[5 + c] as bigint,
        cost: r[6 + c] as bigint,
      };
    };
    try {
      const stmt = this.prepared(sql).raw(true).safeIntegers(true);
      return (stmt.all(...params) as unknown[][]).map(toTotals);
    } catch (error) {
      // SQLite's sum() stops at 2^63-1; past that (over 9.2 million USD in pico-USD in one cell of
      // the answer), add the rows up here, with bigints.
      if (!(error instanceof Error) || !/integer overflow/.test(error.message)) throw error;
      const plain = this.prepared(
        `SELECT ${keys}, events, tokens_in, tokens_out, steps, cost FROM ${table} WHERE ${where.join(" AND ")} ORDER BY bucket`,
      )
        .raw(true)
        .safeIntegers(true);
      const cells = new Map<string, RollupTotals>();
      for (const r of plain.iterate(...params) as IterableIterator<unknown[]>) {
        const row = toTotals(r);
        const key = `${row.bucket}\u0000${row.customer}\u0000${row.dimensions}`;
        const cell = cells.get(key);
        if (!cell) cells.set(key, row);
        else {
          cell.events += row.events;
          cell.tokensIn += row.tokensIn;
          cell.tokensOut += row.tokensOut;
          cell.steps += row.steps;
          cell.cost += row.cost;
        }
      }
      return [...cells.values()];
    }
  }

  scanUsage(
    workspaceId: string,
    scan: EventScan,
    visitEvent: (event: UsageEvent, seq: number) => void,
    visitRollup: (row: UsageRollupRow) => void,
  ): { asOfSeq: number } {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return { asOfSeq: 0 };
    // One read transaction: horizons, rollups and raw events come from the same snapshot.
    return this.db.transaction(() => {
      const horizons = new Map<string, number>();
      for (const h of this.stmt.horizons.all(ws) as { customer: string; before: number }[]) {
        if (scan.customer === undefined || h.customer === scan.customer) horizons.set(h.customer, h.before);
      }
      const typeSql = scan.types ? ` AND type IN (${scan.types.map(() => "?").join(",")})` : "";
      const typeParams = scan.types ?? [];
      const rollups = this.prepared(
        `SELECT bucket, customer, type, dims, events, vals FROM rollup_hour
         WHERE ws = ? AND customer = ? AND bucket >= ? AND bucket < ?${typeSql}`,
      );
      for (const [customer, before] of horizons) {
        const to = Math.min(before, scan.to ?? Number.MAX_SAFE_INTEGER);
        const from = scan.from ?? Number.MIN_SAFE_INTEGER;
        if (from >= to) continue;
        for (const r of rollups.iterate(ws, customer, from, to, ...typeParams) as IterableIterator<{
          bucket: number;
          customer: string;
          type: string;
          dims: string;
          events: number;
          vals: string;
        }>) {
          visitRollup({
            bucket: r.bucket,
            customer: r.customer,
            type: r.type,
            dimensions: JSON.parse(r.dims),
            events: r.events,
            values: JSON.parse(r.vals),
          });
        }
      }
      let from = scan.from;
      if (scan.customer !== undefined) {
        const h = horizons.get(scan.customer);
        if (h !== undefined && (from === undefined || from < h)) from = h;
      }
      const { where, params } = eventFilter(ws, {
        customer: scan.customer,
        from,
        to: scan.to,
        types: scan.types,
      });
      const events = this.prepared(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where.join(" AND ")} ORDER BY ts, seq`,
      );
      for (const row of events.iterate(...params) as IterableIterator<EventRow>) {
        // A late event from before its customer's horizon is in the rollups already.
        const h = horizons.get(row.customer);
        if (h !== undefined && row.ts < h) continue;
        visitEvent(
          {
            id: row.id,
            type: row.type,
            customer: row.customer,
            timestamp: row.ts,
            values: JSON.parse(row.vals),
            dimensions: JSON.parse(row.dims),
          },
          row.seq,
        );
      }
      return { asOfSeq: this.stmt.maxSeq.get() as number };
    })();
  }

  listWorkflowRuns(workspaceId: string, q: WorkflowRunQuery): WorkflowRunTotals[] {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return [];
    const where = ["ws = ?", "workflow = ?"];
    const params: unknown[] = [ws, q.workflow];
    if (q.from !== undefined) {
      where.push("first_ts >= ?");
      params.push(q.from);
    }
    if (q.to !== undefined) {
      where.push("first_ts < ?");
      params.push(q.to);
    }
    if (q.customer !== undefined) {
      where.push("customer = ?");
      params.push(q.customer);
    }
    if (q.after !== undefined) {
      where.push("(first_ts, run) > (?, ?)");
      params.push(q.after.startedAt, q.after.run);
    }
    params.push(q.limit);
    const stmt = this.prepared(
      `SELECT run, customer, events, steps, tokens_in, tokens_out, cost, first_ts, last_ts FROM workflow_runs
       WHERE ${where.join(" AND ")} ORDER BY first_ts, run LIMIT ?`,
    ).safeIntegers(true);
    return (stmt.all(...params) as Record<string, unknown>[]).map((r) => ({
      run: r.run as string,
      customer: r.customer as string,
      events: r.events as bigint,
      steps: r.steps as bigint,
      tokensIn: r.tokens_in as bigint,
      tokensOut: r.tokens_out as bigint,
      cost: r.cost as bigint,
      startedAt: Number(r.first_ts),
      endedAt: Number(r.last_ts),
    }));
  }

  purgeEvents(workspaceId: string, customer: string, before: number): number {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return 0;
    if (before % HOUR_MS !== 0) throw new RangeError("a purge horizon is a whole hour");
    // The horizon first: from then on, quota loads take the hours before it from the rollups.
    this.db.transaction(() => this.stmt.setHorizon.run(ws, customer, before)).immediate();
    let deleted = 0;
    for (;;) {
      const n = this.db.transaction(() => this.stmt.purge.run(ws, customer, before).changes).immediate();
      deleted += n;
      if (n < PURGE_CHUNK_EVENTS) return deleted;
    }
  }

  /**
   * Recomputes the rollups from the raw events in one transaction (stop the server first: it holds
   * the write lock throughout). Hours before a customer's purge horizon keep their rows, since their
   * raw events are gone; day rows are recomputed from the hour rows; runs that started before the
   * horizon keep theirs.
   */
  rebuildRollups(): { events: number } {
    const db = this.db;
    const stmts = prepareRollupStatements(db);
    const runIfAbsent = db.prepare(
      `INSERT INTO workflow_runs (ws, workflow, run, customer, events, steps, tokens_in, tokens_out, cost, first_ts, last_ts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ws, workflow, run) DO NOTHING`,
    );
    const horizonOf = `coalesce((SELECT before FROM purge_horizons h WHERE h.ws = t.ws AND h.customer = t.customer), -9223372036854775808)`;
    const chunk = db.prepare(
      `SELECT seq, ws, type, customer, ts, vals, dims FROM events WHERE seq > ? ORDER BY seq LIMIT ${REBUILD_CHUNK_EVENTS}`,
    );
    return db
      .transaction(() => {
        const horizons = new Map<string, number>();
        for (const h of db.prepare("SELECT ws, customer, before FROM purge_horizons").all() as {
          ws: number;
          customer: string;
          before: number;
        }[])
          horizons.set(`${h.ws}\u0000${h.customer}`, h.before);
        db.exec(`DELETE FROM rollup_hour AS t WHERE bucket >= ${horizonOf}`);
        db.exec(`DELETE FROM workflow_runs AS t WHERE first_ts >= ${horizonOf}`);
        const batch = new RollupBatch();
        let after = 0;
        let events = 0;
        for (;;) {
          const rows = chunk.all(after) as (EventRow & { ws: number })[];
          if (rows.length === 0) break;
          for (const r of rows) {
            const h = horizons.get(`${r.ws}\u0000${r.customer}`);
            if (h !== undefined && r.ts < h) continue;
            batch.add(r.ws, r.type, r.customer, r.ts, r.vals, r.dims);
            events++;
          }
          after = rows[rows.length - 1]!.seq;
          batch.write({ hour: stmts.hour, day: null, run: null });
        }
        batch.write({ hour: stmts.hour, day: null, run: runIfAbsent });
        db.exec("DELETE FROM rollup_day");
        db.exec(
          `INSERT INTO rollup_day (ws, bucket, customer, type, dims, events, tokens_in, tokens_out, steps, cost)
           SELECT ws, (bucket / 86400000) * 86400000 AS day, customer, type, dims, sum(events), sum(tokens_in),
                  sum(tokens_out), sum(steps), sum(cost)
           FROM rollup_hour GROUP BY ws, day, customer, type, dims`,
        );
        return { events };
      })
      .immediate();
  }
}
