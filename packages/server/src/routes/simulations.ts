import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import {
  type Engine,
  formatInstant,
  invalid,
  isValidTimeZone,
  notFound,
  type ProposedConfig,
  Simulation,
  type SimulationResult,
  type SimulationStoreHooks,
  type Store,
  simulationBounds,
  simulationCsv,
  TollgateError,
} from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { keyMinter } from "../crypto.js";
import {
  ConcurrencyLimitBody,
  CustomerBody,
  Id,
  IdParams,
  Instant,
  MeterBody,
  PlanBody,
  QuotaBody,
  RateLimitBody,
} from "../schemas.js";
import { BalanceRuleBody } from "./balances.js";
import type { RouteDeps } from "./common.js";
import { typed } from "./common.js";
import { PriceBody, PricingSettingsBody } from "./prices.js";

/**
 * What-if simulations (issue #11): POST /v1/simulations replays the stored events of a range
 * through the proposed definitions in the background; GET /v1/simulations/{id} answers its status,
 * progress and, once done, the result (JSON, or CSV with ?format=csv). Jobs run one at a time in
 * this process, read the live store only, and are kept in memory (the last `jobsMax`).
 */

export const SimulationBody = Type.Object(
  {
    from: Instant,
    to: Instant,
    customers: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: simulationBounds.customersMax })),
    /** The proposed tollgate.yaml as JSON (sections meters, plans, customers, limits, ...). */
    config: Type.Object(
      {
        prices: Type.Optional(Type.Unknown()),
        meters: Type.Optional(Type.Unknown()),
        plans: Type.Optional(Type.Unknown()),
        customers: Type.Optional(Type.Unknown()),
        limits: Type.Optional(Type.Unknown()),
        rate_limits: Type.Optional(Type.Unknown()),
        concurrency_limits: Type.Optional(Type.Unknown()),
        balance_rules: Type.Optional(Type.Unknown()),
        pricing: Type.Optional(Type.Unknown()),
      },
      { additionalProperties: false },
    ),
    base: Type.Optional(Type.Union([Type.Literal("live"), Type.Literal("empty")])),
  },
  { additionalProperties: false },
);

const SimulationQuery = Type.Object(
  { format: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("csv")])) },
  { additionalProperties: false },
);

/** Each section's entries are checked against the body schema of the PUT route they stand for. */
const sectionSchemas: Record<string, TSchema> = {
  prices: PriceBody,
  meters: MeterBody,
  plans: PlanBody,
  customers: CustomerBody,
  limits: QuotaBody,
  rate_limits: RateLimitBody,
  concurrency_limits: ConcurrencyLimitBody,
  balance_rules: BalanceRuleBody,
};

function checkConfig(config: Static<typeof SimulationBody>["config"]): void {
  for (const [section, schema] of Object.entries(sectionSchemas)) {
    const value = (config as Record<string, unknown>)[section];
    if (value === undefined || value === null) continue;
    const entries: [string, unknown][] = Array.isArray(value)
      ? value.map((item, i) => {
          if (typeof item !== "object" || item === null || typeof item.id !== "string") {
            throw invalid(`config.${section}[${i}] needs an "id"`, { field: `config.${section}[${i}].id` });
          }
          const { id, ...body } = item as { id: string };
          return [`[${i}]`, body];
        })
      : typeof value === "object"
        ? Object.entries(value as Record<string, unknown>).map(([id, body]) => [`.${id}`, body])
        : (() => {
            throw invalid(`config.${section} must be a map or a list`, { field: `config.${section}` });
          })();
    for (const [where, body] of entries) {
      const error = Value.Errors(schema, body).First();
      if (error) {
        const path = error.path.replace(/^\//, "").replaceAll("/", ".");
        throw invalid(`config.${section}${where}${path ? `.${path}` : ""}: ${error.message}`, {
          field: `config.${section}${where}${path ? `.${path}` : ""}`,
        });
      }
    }
  }
  if (config.pricing !== undefined) {
    const error = Value.Errors(PricingSettingsBody, config.pricing).First();
    if (error) throw invalid(`config.pricing: ${error.message}`, { field: "config.pricing" });
  }
}

export interface SimulationJob {
  id: string;
  workspaceId: string;
  status: "pending" | "running" | "done" | "failed";
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  progress: { events: number; fraction: number; at: number | null };
  input: { from: string; to: string; customers: string[] | null; base: "live" | "empty" };
  error: { code: string; message: string } | null;
  result: SimulationResult | null;
  simulation: Simulation | null;
}

/** Creates the store a simulated engine runs on (the composition root gives a MemoryStore sink). */
export type SimulationStoreFactory = (hooks: SimulationStoreHooks) => Store;

export const simulationJobBounds = {
  /** Jobs kept (finished ones are dropped oldest first). */
  jobsMax: 20,
} as const;

/** The simulations of this process: one runs at a time, the others wait their turn. */
export class SimulationJobs {
  private readonly jobs = new Map<string, SimulationJob>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly engine: Engine,
    private readonly createStore: SimulationStoreFactory | null,
  ) {}

  async start(workspaceId: string, body: Static<typeof SimulationBody>): Promise<SimulationJob> {
    if (!this.createStore) {
      throw new TollgateError("UNAVAILABLE", "simulations are not available on this server");
    }
    const active = [...this.jobs.values()].filter((j) => j.status === "pending" || j.status === "running");
    if (active.length >= simulationJobBounds.jobsMax) {
      throw new TollgateError("RATE_LIMIT_EXCEEDED", "too many simulations are waiting; try again later");
    }
    checkConfig(body.config);
    const simulation = await Simulation.prepare(
      {
        source: this.engine.store,
        workspaceId,
        createStore: this.createStore,
        keys: keyMinter,
        isValidTimeZone,
        prices: this.engine.pricing.catalogue,
        stopwatch: () => performance.now(),
        pause: () => new Promise((resolve) => setImmediate(resolve)),
      },
      {
        from: body.from,
        to: body.to,
        ...(body.customers ? { customers: body.customers } : {}),
        config: body.config as ProposedConfig,
        ...(body.base ? { base: body.base } : {}),
      },
    );
    const job: SimulationJob = {
      id: keyMinter.id("sim"),
      workspaceId,
      status: "pending",
      createdAt: Date.now(),
      startedAt: null,
      finishedAt: null,
      progress: { events: 0, fraction: 0, at: null },
      input: { from: body.from, to: body.to, customers: body.customers ?? null, base: body.base ?? "live" },
      error: null,
      result: null,
      simulation,
    };
    this.forgetOld();
    this.jobs.set(job.id, job);
    this.queue = this.queue.then(() => this.run(job));
    return job;
  }

  private async run(job: SimulationJob): Promise<void> {
    job.status = "running";
    job.startedAt = Date.now();
    try {
      job.result = await job.simulation!.run((p) => {
        job.progress = { events: p.events, fraction: p.fraction, at: p.at };
      });
      job.progress.fraction = 1;
      job.status = "done";
    } catch (e) {
      job.status = "failed";
      job.error =
        e instanceof TollgateError
          ? { code: e.code, message: e.message }
          : { code: "INTERNAL", message: e instanceof Error ? e.message : String(e) };
    } finally {
      job.finishedAt = Date.now();
      job.simulation = null; // its engine and state can go
    }
  }

  get(workspaceId: string, id: string): SimulationJob {
    const job = this.jobs.get(id);
    if (!job || job.workspaceId !== workspaceId) throw notFound("simulation", id);
    return job;
  }

  /** Resolves once every queued simulation has finished (tests, shutdown). */
  async settle(): Promise<void> {
    await this.queue;
  }

  /** Stops the running and waiting simulations (they end as failed) and waits for them. */
  async close(): Promise<void> {
    for (const job of this.jobs.values()) job.simulation?.cancel();
    await this.queue;
  }

  private forgetOld(): void {
    for (const [id, job] of this.jobs) {
      if (this.jobs.size < simulationJobBounds.jobsMax) return;
      if (job.status === "done" || job.status === "failed") this.jobs.delete(id);
    }
  }
}

export function presentSimulation(job: SimulationJob) {
  return {
    id: job.id,
    status: job.status,
    created_at: formatInstant(job.createdAt),
    started_at: job.startedAt === null ? null : formatInstant(job.startedAt),
    finished_at: job.finishedAt === null ? null : formatInstant(job.finishedAt),
    progress: {
      events: job.progress.events,
      percent: Math.floor(job.progress.fraction * 10_000) / 100,
      at: job.progress.at === null ? null : formatInstant(job.progress.at),
    },
    ...job.input,
    error: job.error,
    result: job.result,
  };
}

/** POST /v1/simulations, GET /v1/simulations/{id}. */
export function simulationRoutes(jobs: SimulationJobs) {
  return (app: FastifyInstance, _deps: RouteDeps) => {
    const r = typed(app);
    // Before the store closes: a replay reads it until its last page.
    app.addHook("onClose", () => jobs.close());
    r.post(
      "/v1/simulations",
      { schema: { body: SimulationBody, tags: ["simulations"] } },
      async (req, reply) => {
        const job = await jobs.start(req.principal.workspaceId, req.body);
        reply.code(202).header("location", `/v1/simulations/${job.id}`);
        return presentSimulation(job);
      },
    );
    r.get(
      "/v1/simulations/:id",
      { schema: { params: IdParams, querystring: SimulationQuery, tags: ["simulations"] } },
      async (req, reply) => {
        const job = jobs.get(req.principal.workspaceId, req.params.id);
        if (req.query.format === "csv") {
          if (!job.result) {
            throw new TollgateError("CONFLICT", `simulation ${job.id} is ${job.status}: no result yet`, {
              status: job.status,
            });
          }
          reply.header("content-type", "text/csv; charset=utf-8");
          return simulationCsv(job.result);
        }
        return presentSimulation(job);
      },
    );
  };
}
