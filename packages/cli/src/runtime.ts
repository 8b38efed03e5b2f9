import { join } from "node:path";
import { type Clock, Engine, Reports } from "@tollgate/core";
import {
  type ApiRateLimitOptions,
  createApp,
  keyMinter,
  type OverloadOptions,
  type ProxyOptions,
  priceCatalogue,
  proxyOptionsFrom,
  startWebhookService,
  type WebhookService,
  type WebhookServiceOptions,
} from "@tollgate/server";
import { MemoryStore } from "@tollgate/store-memory";
import { PostgresStore } from "@tollgate/store-postgres";
import { RedisLimiter } from "@tollgate/store-redis";
import { SqliteStore } from "@tollgate/store-sqlite";
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { type ApplyReport, alertSettings, applyConfig, loadConfig, webhookSettings } from "./config.js";
import { isValidTimeZone } from "./timezone.js";

export interface ServerOptions {
  /** Folder of the embedded store. @default "./data" */
  dataDir: string;
  /** @default 8787; 0 picks a free port */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Plaintext admin key for the default workspace (TOLLGATE_ADMIN_KEY). */
  adminKey?: string;
  /** tollgate.yaml applied at start. */
  configPath?: string;
  logger?: FastifyServerOptions["logger"];
  clock?: Clock;
  /** Skip listening: for app.inject() tests. */
  listen?: boolean;
  /** Per-key protection of the API; null turns it off. */
  apiRateLimit?: ApiRateLimitOptions | null;
  /** Load shedding (503 past capacity). @default DEFAULT_OVERLOAD of the server */
  overload?: OverloadOptions;
  /** LLM proxy upstreams. @default from TOLLGATE_OPENAI_* / TOLLGATE_ANTHROPIC_* and tollgate.yaml `proxy` */
  proxy?: ProxyOptions;
  /** The webhook worker; unset fields come from TOLLGATE_WEBHOOKS_* and tollgate.yaml `webhooks`. */
  webhooks?: WebhookServiceOptions;
  /**
   * Keep the durable state in PostgreSQL instead of the embedded SQLite file (scale-out; see
   * docs/scale-out.md). `schema` @default "tollgate".
   * @example { url: "postgres://tollgate@127.0.0.1:5432/tollgate" }
   */
  postgres?: { url: string; schema?: string };
  /**
   * Keep hot limit state in Redis, shared by every process (needs `postgres`). `prefix` @default "tg";
   * `cluster`: `url` lists Redis Cluster nodes, comma-separated.
   */
  redis?: { url: string; prefix?: string; cluster?: boolean };
}

export interface RunningServer {
  app: FastifyInstance;
  engine: Engine;
  /** Usage reports and retention (the sweeper applies retention once an hour). */
  reports: Reports;
  store: SqliteStore;
  /** Alert deliveries and usage summaries (tests call webhooks.tick()). */
  webhooks: WebhookService;
  url: string;
  /** Set when this start created the admin key (first start). */
  newAdminKey?: string;
  applied?: ApplyReport;
  close(): Promise<void>;
}

export const DEFAULT_WORKSPACE = "default";
const systemClock: Clock = { now: () => Date.now() };

/** The composition root of the embedded server: the only place that picks the store. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  // Typed as the embedded store for the callers that read its file directly (SQLite-only tests); with
  // --postgres it is a PostgresStore, which has every Store method.
  const store = (
    options.postgres
      ? await PostgresStore.open({ url: options.postgres.url, schema: options.postgres.schema })
      : new SqliteStore({ path: join(options.dataDir, "tollgate.db") })
  ) as SqliteStore;
  const engine = new Engine({
    store,
    clock: options.clock ?? systemClock,
    keys: keyMinter,
    isValidTimeZone,
    prices: priceCatalogue(),
    ...(options.redis
      ? {
          limiter: RedisLimiter.factory({
            url: options.redis.url,
            prefix: options.redis.prefix,
            cluster: options.redis.cluster,
          }),
        }
      : {}),
  });
  const boot = await engine.bootstrap(DEFAULT_WORKSPACE, options.adminKey);
  await engine.start();
  const reports = new Reports(store, engine.clock);
  const app = await createApp({
    engine,
    reports,
    logger: options.logger ?? false,
    apiRateLimit: options.apiRateLimit,
    // What-if simulations run on a memory sink of their own, never on the live store.
    simulationStore: (hooks) => new MemoryStore({ retainEvents: false, retainAlerts: false, ...hooks }),
    ...(options.overload ? { overload: options.overload } : {}),
    proxy:
      options.proxy ??
      proxyOptionsFrom(process.env, options.configPath ? loadConfig(options.configPath).proxy : undefined),
  });
  engine.alerts.balanceLowLevel = alertSettings(options.configPath, process.env).balanceLowLevel;
  const webhooks = startWebhookService(engine, {
    ...webhookSettings(options.configPath, process.env),
    onError: (err, what) => app.log.error({ err }, `${what} failed`),
    ...options.webhooks,
  });
  // Expire reservations whose clients vanished, and drop idle rate-limit state, without any request.
  // Retention (plans' retention_days) runs from the same timer, once an hour.
  let retention: Promise<unknown> | null = null;
  const sweeper = setInterval(() => {
    engine.limiter.sweep(engine.clock.now());
    retention ??= reports
      .retentionDue()
      .catch((err) => app.log.error({ err }, "retention failed"))
      .finally(() => {
        retention = null;
      });
  }, 1000);
  sweeper.unref();

  let applied: ApplyReport | undefined;
  if (options.configPath) {
    const internalKey = app.tollgate.auth.grantInternal(DEFAULT_WORKSPACE);
    applied = await applyConfig(loadConfig(options.configPath), async (method, url, body) => {
      const res = await app.inject({
        method,
        url,
        payload: body as object,
        headers: { authorization: `Bearer ${internalKey}` },
      });
      return { status: res.statusCode, body: res.json() };
    });
  }

  let url = "";
  if (options.listen !== false) {
    url = await app.listen({ port: options.port ?? 8787, host: options.host ?? "127.0.0.1" });
  }
  let closing: Promise<void> | undefined;
  return {
    app,
    engine,
    reports,
    store,
    webhooks,
    url,
    newAdminKey: boot.adminKey && !options.adminKey ? boot.adminKey : undefined,
    applied,
    close() {
      // Drain in-flight requests first, then flush pending group commits and close the file.
      clearInterval(sweeper);
      closing ??= app
        .close()
        .then(() => retention)
        .then(() => engine.alerts.settle())
        .then(() => webhooks.close())
        .then(() => store.close())
        .then(() => (engine.limiter instanceof RedisLimiter ? engine.limiter.close() : undefined));
      return closing;
    },
  };
}
