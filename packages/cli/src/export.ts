import type { Writable } from "node:stream";
import {
  type Granularity,
  HOUR_MS,
  parseCsv,
  Reports,
  type UsageReport,
  type UsageRow,
} from "@tollgate/core";
import { usageCsvChunks, usageJsonChunks } from "@tollgate/server";
import { SqliteStore } from "@tollgate/store-sqlite";
import cliProgress from "cli-progress";

export interface ExportOptions {
  from?: string;
  to?: string;
  format: "csv" | "json";
  granularity?: Granularity;
  groupBy?: string;
  customer?: string;
  /** Read the data folder directly (the default). */
  dbPath?: string;
  workspace: string;
  /** Or ask a running server (GET /v1/usage). */
  url?: string;
  key?: string;
  /** Draw a progress bar on this stream (a TTY), by period reached. */
  progress?: NodeJS.WriteStream | null;
}

/**
 * `tollgate export`: the usage report of GET /v1/usage, written to `out` as it is read (CSV or JSON).
 * From the data folder by default; with `url`, from a running server over HTTP.
 */
export async function exportUsage(o: ExportOptions, out: Writable): Promise<{ rows: number }> {
  const query = {
    from: o.from,
    to: o.to,
    granularity: o.granularity,
    group_by: o.groupBy,
    customer: o.customer,
  };
  return o.url ? exportOverHttp(o, query, out) : exportFromStore(o, query, out);
}

function progressBar(stream: NodeJS.WriteStream | null | undefined, from: number, to: number) {
  if (!stream?.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    { stream, format: "exporting [{bar}] {percentage}% | {period} | {rows} rows", hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const hours = Math.max(1, (to - from) / HOUR_MS);
  bar.start(hours, 0, { period: "", rows: 0 });
  return {
    update(periodStart: number, rows: number) {
      bar.update(Math.min(hours, Math.max(0, (periodStart - from) / HOUR_MS)), {
        period: new Date(periodStart).toISOString().slice(0, 16),
        rows,
      });
    },
    stop() {
      bar.update(hours);
      bar.stop();
    },
  };
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
}

async function exportFromStore(
  o: ExportOptions,
  query: Record<string, string | undefined>,
  out: Writable,
): Promise<{ rows: number }> {
  const store = new SqliteStore({ path: o.dbPath! });
  try {
    if (!(await store.getWorkspace(o.workspace))) throw new Error(`no workspace ${o.workspace}`);
    const reports = new Reports(store, { now: () => Date.now() });
    const report = reports.usage(o.workspace, query);
    const bar = progressBar(o.progress, report.from, report.to);
    let rows = 0;
    async function* tapped(): AsyncGenerator<UsageRow> {
      for await (const r of report.rows) {
        rows++;
        if (rows % 1000 === 1) bar?.update(r.periodStart, rows);
        yield r;
      }
    }
    const counted: UsageReport = { ...report, rows: tapped() };
    for await (const chunk of o.format === "csv" ? usageCsvChunks(counted) : usageJsonChunks(counted))
      await write(out, chunk);
    bar?.stop();
    return { rows };
  } finally {
    await store.close();
  }
}

async function exportOverHttp(
  o: ExportOptions,
  query: Record<string, string | undefined>,
  out: Writable,
): Promise<{ rows: number }> {
  if (!o.key) throw new Error("an API key is needed with --url: --key or TOLLGATE_API_KEY");
  const params = new URLSearchParams({ format: o.format });
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  const res = await fetch(`${o.url!.replace(/\/$/, "")}/v1/usage?${params}`, {
    headers: { authorization: `Bearer ${o.key}` },
  });
  if (!res.ok || !res.body) throw new Error(`GET /v1/usage: ${res.status} ${await res.text()}`);
  // The range, for the progress bar: as the server defaults it when not given.
  const to = o.to ? Date.parse(o.to) : Math.ceil((Date.now() + 1) / HOUR_MS) * HOUR_MS;
  const from = o.from ? Date.parse(o.from) : to - 30 * 24 * HOUR_MS;
  const bar = o.format === "csv" ? progressBar(o.progress, from, to) : null;
  const decoder = new TextDecoder();
  let rows = -1; // the header
  let tail = "";
  for await (const bytes of res.body) {
    const text = decoder.decode(bytes, { stream: true });
    await write(out, text);
    if (o.format !== "csv") continue;
    // Progress: the period of the last whole line received.
    const lines = (tail + text).split("\r\n");
    tail = lines.pop() ?? "";
    rows += lines.length;
    const last = lines[lines.length - 1];
    const period = last ? Date.parse(parseCsv(last)[0]?.[0] ?? "") : Number.NaN;
    if (bar && !Number.isNaN(period)) bar.update(period, rows);
  }
  bar?.stop();
  return { rows: Math.max(0, rows) };
}
