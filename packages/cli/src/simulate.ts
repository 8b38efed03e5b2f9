import { writeFileSync } from "node:fs";
import { DEFINITION_SECTIONS, type SimulationResult, simulationCsv, simulationTable } from "@tollgate/core";
import cliProgress from "cli-progress";
import { loadConfig } from "./config.js";

export interface SimulateOptions {
  config: string;
  from: string;
  to: string;
  customers?: string;
  base?: "live" | "empty";
  format: "table" | "json" | "csv";
  output?: string;
  url: string;
  key: string;
  /** Time between two status polls. @default 250 */
  pollMs?: number;
}

interface Status {
  id: string;
  status: "pending" | "running" | "done" | "failed";
  progress: { events: number; percent: number; at: string | null };
  error: { code: string; message: string } | null;
  result: SimulationResult | null;
}

/**
 * `tollgate simulate`: sends the proposed tollgate.yaml to POST /v1/simulations, follows the job
 * (a progress bar on a terminal), and prints the result as a table, JSON or CSV.
 */
export async function simulate(opts: SimulateOptions): Promise<string> {
  const file = loadConfig(opts.config);
  // Only definitions: proxy, webhooks and alerts settings are the server's, not a plan's.
  const config: Record<string, unknown> = {};
  for (const section of [...DEFINITION_SECTIONS, "pricing"] as const) {
    const value = (file as Record<string, unknown>)[section];
    if (value !== undefined && value !== null) config[section] = value;
  }
  const customers = opts.customers
    ?.split(",")
    .map((c) => c.trim())
    .filter((c) => c !== "");
  const headers = { authorization: `Bearer ${opts.key}`, "content-type": "application/json" };
  const res = await fetch(new URL("/v1/simulations", opts.url), {
    method: "POST",
    headers,
    body: JSON.stringify({
      from: opts.from,
      to: opts.to,
      config,
      ...(customers && customers.length > 0 ? { customers } : {}),
      ...(opts.base ? { base: opts.base } : {}),
    }),
  });
  const started = (await res.json().catch(() => null)) as Status | null;
  if (res.status !== 202 || !started) {
    throw new Error(`${res.status} ${started?.error?.message ?? "the server did not start the simulation"}`);
  }
  let status: Status = started;
  const tty = process.stderr.isTTY === true;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: "simulating [{bar}] {percentage}% | {events} events | at {at}", hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(100, 0, { events: 0, at: "" });
  try {
    while (status.status === "pending" || status.status === "running") {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
      const poll = await fetch(new URL(`/v1/simulations/${status.id}`, opts.url), { headers });
      const body = (await poll.json().catch(() => null)) as Status | null;
      if (!poll.ok || !body) throw new Error(`${poll.status} while following simulation ${status.id}`);
      status = body;
      bar?.update(Math.floor(status.progress.percent), {
        events: status.progress.events.toLocaleString("en-US"),
        at: status.progress.at ?? "",
      });
    }
  } finally {
    bar?.stop();
  }
  if (status.status === "failed" || !status.result) {
    throw new Error(`simulation ${status.id} failed: ${status.error?.message ?? "no result"}`);
  }
  const out =
    opts.format === "json"
      ? `${JSON.stringify(status.result, null, 2)}\n`
      : opts.format === "csv"
        ? simulationCsv(status.result)
        : simulationTable(status.result);
  if (opts.output) writeFileSync(opts.output, out);
  return out;
}
