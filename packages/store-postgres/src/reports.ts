import type {
  EventScan,
  RollupQuery,
  RollupTotals,
  UsageEvent,
  UsageRollupRow,
  WorkflowRunQuery,
  WorkflowRunTotals,
} from "@tollgate/core";
import type pg from "pg";
import { HOUR_MS, RollupBatch } from "./rollups.js";

const SCAN_FETCH_ROWS = 5000;
const PURGE_CHUNK_EVENTS = 5000;
const REBUILD_CHUNK_EVENTS = 50_000;

export interface EventRow {
  seq: number;
  id: string;
  type: string;
  customer: string;
  ts: number;
  vals: string;
  dims: string;
  price_row: string | null;
}

export function toEvent(row: EventRow): UsageEvent {
  const event: UsageEvent = {
    id: row.id,
    type: row.type,
    customer: row.customer,
    timestamp: row.ts,
    values: JSON.parse(row.vals),
    dimensions: JSON.parse(row.dims),
  };
  if (row.price_row !== null) event.priceRow = row.price_row;
  return event;
}

/** Runs `sql` as a cursor inside the caller's transaction and visits every row. */
export async function visitCursor<R>(
  client: pg.ClientBase,
  sql: string,
  params: unknown[],
  visit: (row: R) => void,
): Promise<void> {
  await client.query(`DECLARE c NO SCROLL CURSOR FOR ${sql}`, params);
  for (;;) {
    const { rows } = await client.query(`FETCH ${SCAN_FETCH_ROWS} FROM c`);
    for (const row of rows) visit(row as R);
    if (rows.length < SCAN_FETCH_ROWS) break;
  }
  await client.query("CLOSE c");
}

export async function queryRollups(pool: pg.Pool, ws: number, q: RollupQuery): Promise<RollupTotals[]> {
  if (q.from >= q.to) return [];
  const table = q.resolution === "hour" ? "rollup_hour" : "rollup_day";
  const params: unknown[] = [ws, q.from, q.to];
  const where = ["ws = $1", "bucket >= $2", "bucket < $3"];
  if (q.customer !== undefined) {
    params.push(q.customer);
    where.push(`customer = $${params.length}`);
  }
  if (q.types !== undefined) {
    params.push(q.types);
    where.push(`type = ANY($${params.length}::text[])`);
  }
  const bucket = q.byBucket === false ? "$2::bigint" : "bucket";
  const keys = q.byCustomer ? `${bucket} AS bucket, customer, dims` : `${bucket} AS bucket, dims`;
  const group = [q.byBucket === false ? null : "bucket", q.byCustomer ? "customer" : null, "dims"]
    .filter(Boolean)
    .join(", ");
  const sums =
    "sum(events)::text AS events, sum(tokens_in)::text AS tokens_in, sum(tokens_out)::text AS tokens_out, sum(steps)::text AS steps, sum(cost)::text AS cost";
  const { rows } = await pool.query(
    `SELECT ${keys}, ${sums} FROM ${table} WHERE ${where.join(" AND ")} GROUP BY ${group} ORDER BY 1`,
    params,
  );
  return rows.map((r) => ({
    bucket: Number(r.bucket),
    customer: q.byCustomer ? (r.customer as string) : null,
    dimensions: r.dims as string,
    events: BigInt(r.events),
    tokensIn: BigInt(r.tokens_in),
    tokensOut: BigInt(r.tokens_out),
    steps: BigInt(r.steps),
    cost: BigInt(r.cost),
  }));
}

/** scanUsage inside the caller's REPEATABLE READ transaction (one snapshot). */
export async function scanUsage(
  client: pg.ClientBase,
  ws: number,
  scan: EventScan,
  visitEvent: (event: UsageEvent, seq: number) => void,
  visitRollup: (row: UsageRollupRow) => void,
): Promise<void> {
  const horizons = new Map<string, number>();
  const h = await client.query<{ customer: string; before: number }>(
    "SELECT customer, before FROM purge_horizons WHERE ws = $1",
    [ws],
  );
  for (const r of h.rows)
    if (scan.customer === undefined || r.customer === scan.customer) horizons.set(r.customer, r.before);
  for (const [customer, before] of horizons) {
    const to = Math.min(before, scan.to ?? Number.MAX_SAFE_INTEGER);
    const from = scan.from ?? Number.MIN_SAFE_INTEGER;
    if (from >= to) continue;
    const params: unknown[] = [ws, customer, from, to];
    let typeSql = "";
    if (scan.types) {
      params.push(scan.types);
      typeSql = " AND type = ANY($5::text[])";
    }
    await visitCursor<{
      bucket: number;
      customer: string;
      type: string;
      dims: string;
      events: number;
      vals: string;
    }>(
      client,
      `SELECT bucket, customer, type, dims, events, vals::text AS vals FROM rollup_hour
       WHERE ws = $1 AND customer = $2 AND bucket >= $3 AND bucket < $4${typeSql}`,
      params,
      (r) =>
        visitRollup({
          bucket: r.bucket,
          customer: r.customer,
          type: r.type,
          dimensions: JSON.parse(r.dims),
          events: r.events,
          values: JSON.parse(r.vals),
        }),
    );
  }
  const where = ["ws = $1"];
  const params: unknown[] = [ws];
  let from = scan.from;
  if (scan.customer !== undefined) {
    params.push(scan.customer);
    where.push(`customer = $${params.length}`);
    const hz = horizons.get(scan.customer);
    if (hz !== undefined && (from === undefined || from < hz)) from = hz;
  }
  if (from !== undefined) {
    params.push(from);
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
  await visitCursor<EventRow>(
    client,
    `SELECT seq, id, type, customer, ts, vals, dims, price_row FROM events WHERE ${where.join(" AND ")} ORDER BY ts, seq`,
    params,
    (row) => {
      // A late event from before its customer's horizon is in the rollups already.
      const hz = horizons.get(row.customer);
      if (hz !== undefined && row.ts < hz) return;
      visitEvent(toEvent(row), row.seq);
    },
  );
}

export async function listWorkflowRuns(
  pool: pg.Pool,
  ws: number,
  q: WorkflowRunQuery,
): Promise<WorkflowRunTotals[]> {
  const where = ["ws = $1", "workflow = $2"];
  const params: unknown[] = [ws, q.workflow];
  if (q.from !== undefined) {
    params.push(q.from);
    where.push(`first_ts >= $${params.length}`);
  }
  if (q.to !== undefined) {
    params.push(q.to);
    where.push(`first_ts < $${params.length}`);
  }
  if (q.customer !== undefined) {
    params.push(q.customer);
    where.push(`customer = $${params.length}`);
  }
  if (q.after !== undefined) {
    params.push(q.after.startedAt, q.after.run);
    where.push(`(first_ts, run) > ($${params.length - 1}, $${params.length})`);
  }
  params.push(q.limit);
  const { rows } = await pool.query(
    `SELECT run, customer, events::text, steps::text, tokens_in::text, tokens_out::text, cost::text, first_ts, last_ts
     FROM workflow_runs WHERE ${where.join(" AND ")} ORDER BY first_ts, run LIMIT $${params.length}`,
    params,
  );
  return rows.map((r) => ({
    run: r.run,
    customer: r.customer,
    events: BigInt(r.events),
    steps: BigInt(r.steps),
    tokensIn: BigInt(r.tokens_in),
    tokensOut: BigInt(r.tokens_out),
    cost: BigInt(r.cost),
    startedAt: Number(r.first_ts),
    endedAt: Number(r.last_ts),
  }));
}

export async function purgeEvents(
  pool: pg.Pool,
  ws: number,
  customer: string,
  before: number,
): Promise<number> {
  if (before % HOUR_MS !== 0) throw new RangeError("a purge horizon is a whole hour");
  // The horizon first: from then on, quota loads take the hours before it from the rollups.
  await pool.query(
    `INSERT INTO purge_horizons (ws, customer, before) VALUES ($1, $2, $3)
     ON CONFLICT (ws, customer) DO UPDATE SET before = greatest(purge_horizons.before, excluded.before)`,
    [ws, customer, before],
  );
  let deleted = 0;
  for (;;) {
    const r = await pool.query(
      `DELETE FROM events WHERE seq IN
         (SELECT seq FROM events WHERE ws = $1 AND customer = $2 AND ts < $3 LIMIT ${PURGE_CHUNK_EVENTS})`,
      [ws, customer, before],
    );
    const n = r.rowCount ?? 0;
    deleted += n;
    if (n < PURGE_CHUNK_EVENTS) return deleted;
  }
}

/** Recomputes the rollups from the raw events in one transaction (see the embedded store's). */
export async function rebuildRollups(client: pg.ClientBase): Promise<{ events: number }> {
  await client.query("BEGIN");
  try {
    // Appends wait for the rebuild (and the rebuild for them): counted once either way.
    await client.query("LOCK TABLE rollup_hour, rollup_day, workflow_runs IN EXCLUSIVE MODE");
    const horizons = new Map<string, number>();
    const hz = await client.query<{ ws: number; customer: string; before: number }>(
      "SELECT ws, customer, before FROM purge_horizons",
    );
    for (const h of hz.rows) horizons.set(`${h.ws}\u0000${h.customer}`, h.before);
    const horizonOf = `coalesce((SELECT before FROM purge_horizons h WHERE h.ws = t.ws AND h.customer = t.customer), -9223372036854775808)`;
    await client.query(`DELETE FROM rollup_hour AS t WHERE bucket >= ${horizonOf}`);
    await client.query(`DELETE FROM workflow_runs AS t WHERE first_ts >= ${horizonOf}`);
    const batch = new RollupBatch();
    let after = 0;
    let events = 0;
    for (;;) {
      const { rows } = await client.query<EventRow & { ws: number }>(
        `SELECT seq, ws, type, customer, ts, vals, dims FROM events WHERE seq > $1 ORDER BY seq LIMIT ${REBUILD_CHUNK_EVENTS}`,
        [after],
      );
      if (rows.length === 0) break;
      for (const r of rows) {
        const h = horizons.get(`${r.ws}\u0000${r.customer}`);
        if (h !== undefined && r.ts < h) continue;
        batch.add(r.ws, r.type, r.customer, r.ts, r.vals, r.dims);
        events++;
      }
      after = rows[rows.length - 1]!.seq;
      await batch.write(client, { days: false, runs: "keep" });
    }
    await batch.write(client, { days: false, runs: "if_absent" });
    await client.query("DELETE FROM rollup_day");
    await client.query(
      `INSERT INTO rollup_day (ws, bucket, customer, type, dims, events, tokens_in, tokens_out, steps, cost)
       SELECT ws, (bucket / 86400000) * 86400000 AS day, customer, type, dims, sum(events), sum(tokens_in),
              sum(tokens_out), sum(steps), sum(cost)
       FROM rollup_hour GROUP BY ws, day, customer, type, dims`,
    );
    await client.query("COMMIT");
    return { events };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}
