import swagger from "@fastify/swagger";
import { bounds, type Engine, Reports } from "@tollgate/core";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import { Authenticator, installAuth } from "./auth.js";
import { installErrorHandling, toTollgateError } from "./errors.js";
import { createMetrics, limitStoreGauge, type Metrics } from "./metrics.js";
import { installOverloadProtection, type OverloadOptions } from "./overload.js";
import { ApiProtection, type ApiRateLimitOptions, DEFAULT_API_RATE_LIMIT } from "./protect.js";
import type { ProxyOptions } from "./proxy/config.js";
import { alertRoutes } from "./routes/alerts.js";
import { apiKeyRoutes } from "./routes/api-keys.js";
import { balanceRoutes } from "./routes/balances.js";
import { checkRoutes } from "./routes/check.js";
import type { RouteDeps } from "./routes/common.js";
import { customerRoutes } from "./routes/customers.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import { entitlementRoutes } from "./routes/entitlements.js";
import { eventRoutes } from "./routes/events.js";
import { limitRoutes } from "./routes/limits.js";
import { meterRoutes } from "./routes/meters.js";
import { planRoutes } from "./routes/plans.js";
import { priceRoutes } from "./routes/prices.js";
import { proxyRoutes } from "./routes/proxy.js";
import { SimulationJobs, type SimulationStoreFactory, simulationRoutes } from "./routes/simulations.js";
import { usageRoutes } from "./routes/usage.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { workflowRoutes } from "./routes/workflows.js";

export interface AppOptions {
  engine: Engine;
  /** pino options or false; @default false */
  logger?: FastifyServerOptions["logger"];
  metrics?: Metrics;
  /** Per-key protection of the API itself; null turns it off. @default DEFAULT_API_RATE_LIMIT */
  apiRateLimit?: ApiRateLimitOptions | null;
  /** Upstreams of the LLM proxy (/proxy/...); a provider left out answers 503. @default {} */
  proxy?: ProxyOptions;
  /** Load shedding (503 past capacity); @default DEFAULT_OVERLOAD */
  overload?: OverloadOptions;
  /** Usage reports (GET /v1/usage, /v1/workflows/{id}/runs); @default new Reports(engine.store, engine.clock) */
  reports?: Reports;
  /** The store a what-if simulation's engine runs on (POST /v1/simulations); none: those answer 503. */
  simulationStore?: SimulationStoreFactory;
}

export const API_VERSION = "0.1.0";

/** Builds the HTTP API around the engine it is given. It never picks a store itself. */
declare module "fastify" {
  interface FastifyInstance {
    tollgate: RouteDeps;
  }
}

export async function createApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: bounds.bodyBytesMax,
    // Per-request lines would dominate the log at thousands of requests/s; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // No request hangs: a client that sends its body too slowly is cut off.
    requestTimeout: 30_000,
    forceCloseConnections: "idle",
    // Ids are up to idLengthMax characters; percent-encoded UTF-8 takes up to 12 per character. Past
    // that, and for malformed URLs, the router's own errors are answered in the API's error shape.
    routerOptions: { maxParamLength: bounds.idLengthMax * 12 },
    frameworkErrors: (error, _request, reply) => {
      const te = toTollgateError(error);
      (reply as unknown as FastifyReply).code(te.status).send(te.toBody());
    },
    ajv: {
      // Strict bodies: no coercion ("1" is not 1), no silent stripping of unknown fields. Instants keep
      // `format: date-time` for the OpenAPI, but are checked once, by the core's parseInstant (which
      // names the field), not a second time on the hot path.
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        allErrors: false,
        validateFormats: false,
      },
    },
  });
  // JSON everywhere: a text/plain body is a wrong content type, not a string to validate.
  app.removeContentTypeParser("text/plain");
  const metrics = options.metrics ?? createMetrics();
  options.engine.onUnpriced = () => metrics.eventsUnpriced.inc();
  const limiter = options.engine.limiter;
  if (limiter.connected) limitStoreGauge(metrics, () => limiter.connected!());
  const deps: RouteDeps = { engine: options.engine, auth: new Authenticator(options.engine), metrics };
  app.decorate("tollgate", deps);

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Tollgate API",
        version: API_VERSION,
        description: "Usage metering and limit enforcement for AI products. See API.md for the contract.",
      },
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      },
      security: [{ bearer: [] }],
    },
  });

  installErrorHandling(app);
  installOverloadProtection(app, options.overload ?? {}, (reason) => metrics.requestsShed.inc({ reason }));
  const limit = options.apiRateLimit === undefined ? DEFAULT_API_RATE_LIMIT : options.apiRateLimit;
  installAuth(app, deps.auth, limit ? new ApiProtection(limit) : null);
  // Callback hooks (not async ones): each async hook costs every request a promise and a microtask.
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.http.record(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  // A request in flight when close() begins still gets its answer, and then its connection closes:
  // otherwise a keep-alive client holds close() (and a SIGTERM shutdown) open until its idle timeout.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", (request, reply, payload, done) => {
    if (closing && request.raw.httpVersionMajor !== 2) reply.header("connection", "close");
    done(null, payload);
  });

  app.get("/health", { config: { role: "public" }, schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/metrics", { config: { role: "public" }, schema: { hide: true } }, async (_req, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get("/openapi.json", { config: { role: "public" }, schema: { hide: true } }, async () => app.swagger());

  for (const routes of [
    apiKeyRoutes,
    customerRoutes,
    planRoutes,
    meterRoutes,
    eventRoutes,
    limitRoutes,
    checkRoutes,
    alertRoutes,
    webhookRoutes,
    balanceRoutes,
    priceRoutes,
    entitlementRoutes,
    usageRoutes(options.reports ?? new Reports(options.engine.store, options.engine.clock)),
    workflowRoutes(options.reports ?? new Reports(options.engine.store, options.engine.clock)),
    simulationRoutes(new SimulationJobs(options.engine, options.simulationStore ?? null)),
    dashboardRoutes(),
  ])
    routes(app, deps);
  proxyRoutes(app, deps, options.proxy ?? {});
  await app.ready();
  return app;
}
