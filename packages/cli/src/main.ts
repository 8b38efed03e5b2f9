import { join } from "node:path";
import { Engine } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { SqliteStore } from "@tollgate/store-sqlite";
import { Command, InvalidArgumentError } from "commander";
import { applyConfig, httpSender, loadConfig } from "./config.js";
import { DEFAULT_WORKSPACE, startServer } from "./runtime.js";
import { simulate } from "./simulate.js";
import { isValidTimeZone } from "./timezone.js";

const env = process.env;

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("not a port number");
  return n;
};

const program = new Command("tollgate")
  .description("Tollgate: usage metering and limit enforcement for AI products")
  .showHelpAfterError();

program
  .command("serve")
  .description("run the API server on the embedded SQLite store")
  .option("-p, --port <port>", "port to listen on", port, Number(env.TOLLGATE_PORT ?? 8787))
  .option("--host <host>", "address to bind", env.TOLLGATE_HOST ?? "127.0.0.1")
  .option("-d, --data <dir>", "folder of the embedded store", env.TOLLGATE_DATA ?? "./data")
  .option("-c, --config <file>", "tollgate.yaml to apply at start", env.TOLLGATE_CONFIG)
  .option("--log-level <level>", "fatal|error|warn|info|debug", env.TOLLGATE_LOG_LEVEL ?? "info")
  .option(
    "--api-rate-limit <n>",
    "requests per second each API key may make (0: off)",
    (v) => Number(v),
    Number(env.TOLLGATE_API_RATE_LIMIT ?? 5000),
  )
  .option(
    "--max-in-flight <n>",
    "requests in progress at once; past it, 503 at once (load shedding)",
    (v) => Number(v),
    Number(env.TOLLGATE_MAX_IN_FLIGHT ?? 4096),
  )
  .option("--postgres <url>", "keep durable state in PostgreSQL (scale-out)", env.TOLLGATE_POSTGRES_URL)
  .option("--postgres-schema <name>", "PostgreSQL schema", env.TOLLGATE_POSTGRES_SCHEMA ?? "tollgate")
  .option(
    "--redis <url>",
    "keep hot limit state in Redis (scale-out; needs --postgres)",
    env.TOLLGATE_REDIS_URL,
  )
  .option(
    "--redis-cluster",
    "--redis names Redis Cluster nodes (comma-separated): one slot per workspace",
    ["1", "true"].includes(env.TOLLGATE_REDIS_CLUSTER ?? ""),
  )
  .action(async (opts) => {
    const server = await startServer({
      overload: { maxInFlight: opts.maxInFlight },
      ...(opts.postgres ? { postgres: { url: opts.postgres, schema: opts.postgresSchema } } : {}),
      ...(opts.redis ? { redis: { url: opts.redis, cluster: opts.redisCluster === true } } : {}),
      apiRateLimit: opts.apiRateLimit > 0 ? { limit: opts.apiRateLimit, windowSeconds: 1 } : null,
      dataDir: opts.data,
      port: opts.port,
      host: opts.host,
      configPath: opts.config,
      adminKey: env.TOLLGATE_ADMIN_KEY || undefined,
      logger: { level: opts.logLevel },
    });
    const out = process.stdout;
    const where = opts.postgres ? `postgres: ${redactUrl(opts.postgres)}` : `data: ${opts.data}`;
    out.write(
      `Tollgate listening on ${server.url} (${where}${opts.redis ? `, redis: ${redactUrl(opts.redis)}` : ""})\n`,
    );
    if (server.newAdminKey) {
      out.write(`\nAdmin key for workspace "${DEFAULT_WORKSPACE}" (shown once, store it now):\n\n`);
      out.write(`  ${server.newAdminKey}\n\n`);
    }
    if (server.applied) {
      out.write(`Applied ${opts.config}: ${server.applied.created.length} created, `);
      out.write(`${server.applied.updated.length} updated\n`);
    }
    const stop = (signal: string) => {
      server.app.log.info({ signal }, "shutting down: draining requests");
      const timer = setTimeout(() => process.exit(1), 10_000);
      server.close().then(
        () => {
          clearTimeout(timer);
          process.exit(0);
        },
        (err) => {
          server.app.log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });

program
  .command("apply")
  .description("create or update meters, plans and customers from a tollgate.yaml, over the API")
  .requiredOption("-f, --file <file>", "the config file")
  .option("--url <url>", "the server", env.TOLLGATE_URL ?? "http://127.0.0.1:8787")
  .option("--key <key>", "an admin key (or TOLLGATE_API_KEY)", env.TOLLGATE_API_KEY)
  .action(async (opts) => {
    if (!opts.key) throw new Error("an admin key is needed: --key or TOLLGATE_API_KEY");
    const report = await applyConfig(loadConfig(opts.file), httpSender(opts.url, opts.key));
    for (const what of report.created) process.stdout.write(`created ${what}\n`);
    for (const what of report.updated) process.stdout.write(`updated ${what}\n`);
  });

program
  .command("reprice")
  .description("after a price correction: recompute stored costs, rollups and balance debits of a range")
  .requiredOption("--from <instant>", "start of the range (RFC 3339)")
  .requiredOption("--to <instant>", "end of the range, exclusive (RFC 3339)")
  .option("--model <model>", "only events of this model")
  .option("--url <url>", "the server", env.TOLLGATE_URL ?? "http://127.0.0.1:8787")
  .option("--key <key>", "an admin key (or TOLLGATE_API_KEY)", env.TOLLGATE_API_KEY)
  .action(async (opts) => {
    if (!opts.key) throw new Error("an admin key is needed: --key or TOLLGATE_API_KEY");
    const res = await fetch(new URL("/v1/prices/reprice", opts.url), {
      method: "POST",
      headers: { authorization: `Bearer ${opts.key}`, "content-type": "application/json" },
      body: JSON.stringify({ from: opts.from, to: opts.to, ...(opts.model ? { model: opts.model } : {}) }),
    });
    const body = (await res.json().catch(() => null)) as {
      error?: { message: string };
      events_changed?: number;
      events_scanned?: number;
      models?: { model: string; events: number; cost_before: string; cost_after: string }[];
    } | null;
    if (!res.ok) throw new Error(`${res.status} ${body?.error?.message ?? ""}`);
    process.stdout.write(`repriced ${body?.events_changed} of ${body?.events_scanned} events\n`);
    for (const m of body?.models ?? []) {
      process.stdout.write(`  ${m.model}: ${m.events} events, ${m.cost_before} → ${m.cost_after} USD\n`);
    }
  });

program
  .command("simulate")
  .description(
    "what-if: replay the stored events of a range through a proposed tollgate.yaml (nothing live changes)",
  )
  .requiredOption("-c, --config <file>", "the proposed tollgate.yaml")
  .requiredOption("--from <instant>", "start of the range (RFC 3339)")
  .requiredOption("--to <instant>", "end of the range, exclusive (RFC 3339)")
  .option("--customers <ids>", "only these customers (comma-separated)")
  .option("--base <base>", "live: the proposal over the live definitions; empty: the proposal alone", "live")
  .option("--format <format>", "table, json or csv", "table")
  .option("-o, --output <file>", "write the result to a file instead of stdout")
  .option("--url <url>", "the server", env.TOLLGATE_URL ?? "http://127.0.0.1:8787")
  .option("--key <key>", "an admin key (or TOLLGATE_API_KEY)", env.TOLLGATE_API_KEY)
  .action(async (opts) => {
    if (!opts.key) throw new Error("an admin key is needed: --key or TOLLGATE_API_KEY");
    if (!["table", "json", "csv"].includes(opts.format))
      throw new Error("--format must be table, json or csv");
    if (opts.base !== "live" && opts.base !== "empty") throw new Error("--base must be live or empty");
    const out = await simulate(opts);
    if (!opts.output) process.stdout.write(out);
  });

/** Admin commands work on the data folder directly, so they work when no key is at hand. */
async function withEngine<T>(dataDir: string, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const store = new SqliteStore({ path: join(dataDir, "tollgate.db") });
  try {
    const engine = new Engine({ store, clock: { now: () => Date.now() }, keys: keyMinter, isValidTimeZone });
    return await fn(engine);
  } finally {
    await store.close();
  }
}

const keys = program.command("keys").description("manage API keys");
keys
  .command("create")
  .description("create an API key and print it once")
  .option("--role <role>", "admin or service", "service")
  .option("--name <name>", "a label for the key", "cli")
  .option("-w, --workspace <id>", "workspace", DEFAULT_WORKSPACE)
  .option("-d, --data <dir>", "folder of the embedded store", env.TOLLGATE_DATA ?? "./data")
  .action(async (opts) => {
    if (opts.role !== "admin" && opts.role !== "service") throw new Error("--role must be admin or service");
    await withEngine(opts.data, async (engine) => {
      if (!(await engine.store.getWorkspace(opts.workspace)))
        throw new Error(`no workspace ${opts.workspace}`);
      const { record, key } = await engine.createApiKey(opts.workspace, opts.name, opts.role);
      process.stdout.write(`${key}\n`);
      process.stderr.write(`created ${record.role} key ${record.id} in workspace ${opts.workspace}\n`);
    });
  });

program
  .command("workspaces")
  .description("manage workspaces")
  .command("create <id>")
  .description("create a workspace and print its admin key once")
  .option("-d, --data <dir>", "folder of the embedded store", env.TOLLGATE_DATA ?? "./data")
  .action(async (id: string, opts) => {
    await withEngine(opts.data, async (engine) => {
      const { adminKey, created } = await engine.bootstrap(id);
      if (!created) throw new Error(`workspace ${id} exists already`);
      process.stdout.write(`${adminKey}\n`);
    });
  });

program
  .command("export")
  .description(
    "write the usage report (GET /v1/usage) as CSV or JSON to stdout, with a progress bar on a TTY",
  )
  .option("--from <instant>", "start, a whole hour (default: 30 days before --to)")
  .option("--to <instant>", "end, a whole hour, exclusive (default: the end of the current hour)")
  .option("--format <format>", "csv or json", "csv")
  .option("--granularity <unit>", "hour, day, week or month (default: one row per group)")
  .option("--group-by <dims>", "comma-separated: customer, model, workflow, key, feature, any dimension")
  .option("--customer <id>", "only this customer")
  .option("-w, --workspace <id>", "workspace (data folder mode)", DEFAULT_WORKSPACE)
  .option("-d, --data <dir>", "folder of the embedded store", env.TOLLGATE_DATA ?? "./data")
  .option("--url <url>", "ask a running server instead of reading the data folder")
  .option("--key <key>", "an API key for --url (or TOLLGATE_API_KEY)", env.TOLLGATE_API_KEY)
  .action(async (opts) => {
    if (opts.format !== "csv" && opts.format !== "json") throw new Error("--format must be csv or json");
    const { exportUsage } = await import("./export.js");
    const { rows } = await exportUsage(
      {
        from: opts.from,
        to: opts.to,
        format: opts.format,
        granularity: opts.granularity,
        groupBy: opts.groupBy,
        customer: opts.customer,
        dbPath: join(opts.data, "tollgate.db"),
        workspace: opts.workspace,
        url: opts.url,
        key: opts.key,
        progress: process.stderr.isTTY ? process.stderr : null,
      },
      process.stdout,
    );
    if (process.stderr.isTTY) process.stderr.write(`exported ${rows} rows\n`);
  });

program
  .command("rebuild-rollups")
  .description("recompute the report rollups from the raw events (stop the server first)")
  .option("-d, --data <dir>", "folder of the embedded store", env.TOLLGATE_DATA ?? "./data")
  .action(async (opts) => {
    const store = new SqliteStore({ path: join(opts.data, "tollgate.db") });
    try {
      const started = Date.now();
      const { events } = await store.rebuildRollups();
      process.stdout.write(`rebuilt the rollups from ${events} raw events in ${Date.now() - started} ms\n`);
    } finally {
      await store.close();
    }
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`tollgate: ${err.message}\n`);
  process.exit(1);
});

/** A connection URL without its password, for the start-up line. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}
