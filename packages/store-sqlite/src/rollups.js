// Rollups of the embedded store: usage pre-aggregated per hour (and per UTC day) and per workflow run,
// maintained in the same transaction as the event insert. Plain JavaScript so that the writer thread
// loads it without a TypeScript loader. See migrations/003_rollups.sql and docs/reports.md.

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Rows of one rollup table: both tables share the shape. */
const CELL_COLUMNS = "ws, bucket, customer, type, dims, events, tokens_in, tokens_out, steps, cost";

/** Sums two `vals` JSON objects of value sums. Registered as an SQL function on every connection. */
export function mergeSums(a, b) {
  const x = JSON.parse(a);
  const y = JSON.parse(b);
  for (const k in y) x[k] = (x[k] ?? 0) + y[k];
  return canonicalSums(x);
}

function canonicalSums(obj) {
  const keys = Object.keys(obj).sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++)
    out += `${i === 0 ? "" : ","}${JSON.stringify(keys[i])}:${obj[keys[i]]}`;
  return `${out}}`;
}

/** Registers `merge_sums(a, b)` and the aggregate `sum_vals(vals)` on a connection. */
export function registerRollupFunctions(db) {
  db.function("merge_sums", { deterministic: true }, mergeSums);
  db.aggregate("sum_vals", {
    start: () => ({}),
    step: (acc, v) => {
      const y = JSON.parse(v);
      for (const k in y) acc[k] = (acc[k] ?? 0) + y[k];
    },
    result: (acc) => canonicalSums(acc),
  });
}

/** Upsert statements of the rollup tables, prepared once per connection. */
export function prepareRollupStatements(db) {
  const sums = `events = events + excluded.events, tokens_in = tokens_in + excluded.tokens_in,
         tokens_out = tokens_out + excluded.tokens_out, steps = steps + excluded.steps,
         cost = cost + excluded.cost`;
  return {
    hour: db.prepare(
      `INSERT INTO rollup_hour (${CELL_COLUMNS}, vals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ws, bucket, customer, type, dims) DO UPDATE SET ${sums}, vals = merge_sums(vals, excluded.vals)`,
    ),
    day: db.prepare(
      `INSERT INTO rollup_day (${CELL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ws, bucket, customer, type, dims) DO UPDATE SET ${sums}`,
    ),
    run: db.prepare(
      `INSERT INTO workflow_runs (ws, workflow, run, customer, events, steps, tokens_in, tokens_out, cost, first_ts, last_ts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ws, workflow, run) DO UPDATE SET
         events = events + excluded.events, steps = steps + excluded.steps,
         tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out,
         cost = cost + excluded.cost, first_ts = min(first_ts, excluded.first_ts),
         last_ts = max(last_ts, excluded.last_ts)`,
    ),
  };
}

/**
 * The innermost map (type → cell) of an index ws → bucket → dims → customer → type, made as needed.
 * Nested maps rather than one joined key: no key string is built, flattened and hashed per event
 * (the dims JSON alone is ~45 characters), and no separator inside a customer or type can make two
 * cells one.
 */
function typeMap(index, ws, bucket, dims, customer) {
  return child(child(child(child(index, ws), bucket), dims), customer);
}

/** The map under `key` in `map`, made as needed. */
function child(map, key) {
  let m = map.get(key);
  if (m === undefined) {
    m = new Map();
    map.set(key, m);
  }
  return m;
}

/**
 * The rollup contributions of a set of newly inserted events, aggregated in memory first so that a
 * group commit of thousands of events writes one row per distinct (hour, customer, type, dimensions).
 */
export class RollupBatch {
  constructor() {
    /** The cells, in the order they were made. */
    this.cells = [];
    /** ws → bucket → dims → customer → type → cell (typeMap). */
    this.index = new Map();
    /** ws \0 workflow \0 run → run cell */
    this.runs = new Map();
  }

  /** One inserted event, as the writer has it (JSON strings of canonical values and dimensions). */
  add(ws, type, customer, ts, valsJson, dimsJson) {
    const vals = JSON.parse(valsJson);
    let dims = dimsJson;
    let run;
    let workflow;
    if (dimsJson.includes('"run"')) {
      const d = JSON.parse(dimsJson);
      run = d.run;
      workflow = d.workflow;
      if (run !== undefined) {
        delete d.run;
        // Keys stay in their canonical (sorted) order: JSON.parse keeps insertion order.
        dims = JSON.stringify(d);
      }
    }
    const bucket = Math.floor(ts / HOUR_MS) * HOUR_MS;
    const byType = typeMap(this.index, ws, bucket, dims, customer);
    let cell = byType.get(type);
    if (cell === undefined) {
      cell = { ws, bucket, customer, type, dims, events: 0, vals: {} };
      byType.set(type, cell);
      this.cells.push(cell);
    }
    cell.events++;
    for (const k in vals) cell.vals[k] = (cell.vals[k] ?? 0) + vals[k];
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

  clear() {
    this.cells = [];
    this.index.clear();
    this.runs.clear();
  }

  get size() {
    return this.cells.length + this.runs.size;
  }

  /** Writes the hour and day rows and the runs (inside the caller's transaction); a null statement skips its table. */
  write(stmts) {
    const days = [];
    const dayIndex = new Map();
    for (const c of this.cells) {
      const v = c.vals;
      const valsJson = canonicalSums(v);
      const row = [c.events, v.tokens_in ?? 0, v.tokens_out ?? 0, v.steps ?? 0, v.cost ?? 0];
      stmts.hour.run(c.ws, c.bucket, c.customer, c.type, c.dims, ...row, valsJson);
      if (stmts.day === null) continue;
      const day = Math.floor(c.bucket / DAY_MS) * DAY_MS;
      const byType = typeMap(dayIndex, c.ws, day, c.dims, c.customer);
      const d = byType.get(c.type);
      if (d === undefined) {
        const cell = {
          ws: c.ws,
          bucket: day,
          customer: c.customer,
          type: c.type,
          dims: c.dims,
          events: c.events,
          vals: { ...v },
        };
        byType.set(c.type, cell);
        days.push(cell);
      } else {
        d.events += c.events;
        for (const k in v) d.vals[k] = (d.vals[k] ?? 0) + v[k];
      }
    }
    for (const d of days) {
      const v = d.vals;
      stmts.day.run(
        d.ws,
        d.bucket,
        d.customer,
        d.type,
        d.dims,
        d.events,
        v.tokens_in ?? 0,
        v.tokens_out ?? 0,
        v.steps ?? 0,
        v.cost ?? 0,
      );
    }
    this.cells = [];
    this.index.clear();
    // Runs not written are kept for a later write (a rebuild writes them once, at the end).
    if (stmts.run === null) return;
    for (const r of this.runs.values()) {
      stmts.run.run(
        r.ws,
        r.workflow,
        r.run,
        r.customer,
        r.events,
        r.steps,
        r.tokensIn,
        r.tokensOut,
        r.cost,
        r.first,
        r.last,
      );
    }
    this.runs.clear();
  }
}
