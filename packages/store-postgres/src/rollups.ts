import type pg from "pg";

// Rollups, as the embedded store keeps them (its rollups.js; docs/reports.md): usage per hour (and
// per UTC day) and per workflow run, aggregated in memory per flush and upserted with one multi-row
// statement per table in the same transaction as the events.

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

interface Cell {
  ws: number;
  bucket: number;
  customer: string;
  type: string;
  dims: string;
  events: number;
  vals: Record<string, number>;
}
interface RunCell {
  ws: number;
  workflow: string;
  run: string;
  customer: string;
  events: number;
  steps: number;
  tokensIn: number;
  tokensOut: number;
  cost: number;
  first: number;
  last: number;
}

/** Canonical JSON of value sums (sorted keys), as the embedded store writes them. */
export function canonicalSums(obj: Record<string, number | string>): string {
  const keys = Object.keys(obj).sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++)
    out += `${i === 0 ? "" : ","}${JSON.stringify(keys[i])}:${obj[keys[i]!]}`;
  return `${out}}`;
}

export class RollupBatch {
  readonly cells = new Map<string, Cell>();
  readonly runs = new Map<string, RunCell>();

  add(ws: number, type: string, customer: string, ts: number, valsJson: string, dimsJson: string): void {
    const vals = JSON.parse(valsJson) as Record<string, number>;
    let dims = dimsJson;
    let run: string | undefined;
    let workflow: string | undefined;
    if (dimsJson.includes('"run"')) {
      const d = JSON.parse(dimsJson) as Record<string, string>;
      run = d.run;
      workflow = d.workflow;
      if (run !== undefined) {
        delete d.run;
        dims = JSON.stringify(d);
      }
    }
    const bucket = Math.floor(ts / HOUR_MS) * HOUR_MS;
    const key = `${ws}\u0000${bucket}\u0000${customer}\u0000${type}\u0000${dims}`;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { ws, bucket, customer, type, dims, events: 0, vals: {} };
      this.cells.set(key, cell);
    }
    cell.events++;
    for (const k in vals) cell.vals[k] = (cell.vals[k] ?? 0) + vals[k]!;
    if (run !== undefined && workflow !== undefined) {
      const rk = `${ws}\u0000${workflow}\u0000${run}`;
      let r = this.runs.get(rk);
      if (r === undefined) {
        r = {
          ws,
          workflow,
          run,
          customer,
          events: 0,
          steps: 0,
          tokensIn: 0,
          tokensOut: 0,
          cost: 0,
          first: ts,
          last: ts,
        };
        this.runs.set(rk, r);
      }
      r.events++;
      r.steps += vals.steps ?? 0;
      r.tokensIn += vals.tokens_in ?? 0;
      r.tokensOut += vals.tokens_out ?? 0;
      r.cost += vals.cost ?? 0;
      if (ts < r.first) r.first = ts;
      if (ts > r.last) r.last = ts;
    }
  }

  clear(): void {
    this.cells.clear();
    this.runs.clear();
  }

  /** Upserts the hour rows, the day rows (unless `days` is false) and the runs (`runs`: add or insert-if-absent). */
  async write(
    client: pg.ClientBase,
    opts: { days: boolean; runs: "add" | "if_absent" | "keep" } = { days: true, runs: "add" },
  ): Promise<void> {
    if (this.cells.size > 0) {
      const cells = [...this.cells.values()];
      await client.query(
        `INSERT INTO rollup_hour (ws, bucket, customer, type, dims, events, tokens_in, tokens_out, steps, cost, vals)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
           $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::jsonb[])
         ON CONFLICT (ws, bucket, customer, type, dims) DO UPDATE SET events = rollup_hour.events + excluded.events,
           tokens_in = rollup_hour.tokens_in + excluded.tokens_in, tokens_out = rollup_hour.tokens_out + excluded.tokens_out,
           steps = rollup_hour.steps + excluded.steps, cost = rollup_hour.cost + excluded.cost,
           vals = merge_sums(rollup_hour.vals, excluded.vals)`,
        [
          cells.map((c) => c.ws),
          cells.map((c) => c.bucket),
          cells.map((c) => c.customer),
          cells.map((c) => c.type),
          cells.map((c) => c.dims),
          cells.map((c) => c.events),
          cells.map((c) => c.vals.tokens_in ?? 0),
          cells.map((c) => c.vals.tokens_out ?? 0),
          cells.map((c) => c.vals.steps ?? 0),
          cells.map((c) => c.vals.cost ?? 0),
          cells.map((c) => canonicalSums(c.vals)),
        ],
      );
      if (opts.days) {
        const days = new Map<string, Cell>();
        for (const c of cells) {
          const day = Math.floor(c.bucket / DAY_MS) * DAY_MS;
          const dk = `${c.ws}\u0000${day}\u0000${c.customer}\u0000${c.type}\u0000${c.dims}`;
          const d = days.get(dk);
          if (d === undefined) days.set(dk, { ...c, bucket: day, vals: { ...c.vals } });
          else {
            d.events += c.events;
            for (const k in c.vals) d.vals[k] = (d.vals[k] ?? 0) + c.vals[k]!;
          }
        }
        const ds = [...days.values()];
        await client.query(
          `INSERT INTO rollup_day (ws, bucket, customer, type, dims, events, tokens_in, tokens_out, steps, cost)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
           ON CONFLICT (ws, bucket, customer, type, dims) DO UPDATE SET events = rollup_day.events + excluded.events,
             tokens_in = rollup_day.tokens_in + excluded.tokens_in, tokens_out = rollup_day.tokens_out + excluded.tokens_out,
             steps = rollup_day.steps + excluded.steps, cost = rollup_day.cost + excluded.cost`,
          [
            ds.map((c) => c.ws),
            ds.map((c) => c.bucket),
            ds.map((c) => c.customer),
            ds.map((c) => c.type),
            ds.map((c) => c.dims),
            ds.map((c) => c.events),
            ds.map((c) => c.vals.tokens_in ?? 0),
            ds.map((c) => c.vals.tokens_out ?? 0),
            ds.map((c) => c.vals.steps ?? 0),
            ds.map((c) => c.vals.cost ?? 0),
          ],
        );
      }
      this.cells.clear();
    }
    if (opts.runs === "keep" || this.runs.size === 0) return;
    const rs = [...this.runs.values()];
    const onConflict =
      opts.runs === "if_absent"
        ? "DO NOTHING"
        : `DO UPDATE SET events = workflow_runs.events + excluded.events, steps = workflow_runs.steps + excluded.steps,
           tokens_in = workflow_runs.tokens_in + excluded.tokens_in, tokens_out = workflow_runs.tokens_out + excluded.tokens_out,
           cost = workflow_runs.cost + excluded.cost, first_ts = least(workflow_runs.first_ts, excluded.first_ts),
           last_ts = greatest(workflow_runs.last_ts, excluded.last_ts)`;
    await client.query(
      `INSERT INTO workflow_runs (ws, workflow, run, customer, events, steps, tokens_in, tokens_out, cost, first_ts, last_ts)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
         $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
       ON CONFLICT (ws, workflow, run) ${onConflict}`,
      [
        rs.map((r) => r.ws),
        rs.map((r) => r.workflow),
        rs.map((r) => r.run),
        rs.map((r) => r.customer),
        rs.map((r) => r.events),
        rs.map((r) => r.steps),
        rs.map((r) => r.tokensIn),
        rs.map((r) => r.tokensOut),
        rs.map((r) => r.cost),
        rs.map((r) => r.first),
        rs.map((r) => r.last),
      ],
    );
    this.runs.clear();
  }
}
