import { type CheckResult, formatInstant, type LimitOutcome } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { CheckBody, CommitBody, IdParams } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

const at = (ms: number | null) => (ms === null ? null : formatInstant(ms));
const seconds = (ms: number | null) => (ms === null ? undefined : Math.ceil(ms / 1000));

/** A limit's outcome as API.md shows it (built field by field, in this order: no spread objects). */
export interface OutcomeBody {
  id: string;
  kind: LimitOutcome["kind"];
  allowed: boolean;
  exceeded: boolean;
  enforcement: LimitOutcome["enforcement"];
  limit: number;
  remaining: number;
  used?: number;
  reserved?: number;
  reset_at: string | null;
  retry_after?: number;
  group?: Record<string, string | null>;
}

export const presentOutcome = (o: LimitOutcome): OutcomeBody => {
  const body: OutcomeBody = {
    id: o.id,
    kind: o.kind,
    allowed: o.allowed,
    exceeded: o.exceeded,
    enforcement: o.enforcement,
    limit: o.limit,
    remaining: o.remaining,
  } as OutcomeBody;
  if (o.used !== undefined) body.used = o.used;
  if (o.reserved !== undefined) body.reserved = o.reserved;
  body.reset_at = at(o.resetAt);
  if (o.retryAfterMs !== null) body.retry_after = seconds(o.retryAfterMs);
  if (o.group) body.group = o.group;
  return body;
};

/** POST /v1/check's answer, fields in this order. */
interface CheckBodyOut {
  allowed: boolean;
  code?: string;
  limits: OutcomeBody[];
  degraded?: boolean;
  reservation?: { id: string; expires_at: string };
}

export function checkRoutes(app: FastifyInstance, { engine, metrics }: RouteDeps) {
  const r = typed(app);
  const config = { role: "service" as const };
  const answer = (result: CheckResult): CheckBodyOut => {
    const body: CheckBodyOut = { allowed: result.allowed } as CheckBodyOut;
    if (result.code) body.code = result.code;
    const limits: OutcomeBody[] = new Array(result.limits.length);
    for (let i = 0; i < limits.length; i++) limits[i] = presentOutcome(result.limits[i]!);
    body.limits = limits;
    // A limiter whose state store is unreachable answers by each limit's fail_mode (API.md).
    if ((result as { degraded?: boolean }).degraded) {
      body.degraded = true;
      metrics.checksDegraded.inc({ allowed: String(result.allowed) });
    }
    if (result.reservation)
      body.reservation = {
        id: result.reservation.id,
        expires_at: formatInstant(result.reservation.expiresAt),
      };
    return body;
  };
  // Not an async handler: a check decided in memory is answered at once (Fastify sends a returned
  // object), without the two promises and microtask turns of an async function awaiting a promise.
  // A check that waits (a store load, a reservation) answers a promise; a throw is a rejection's twin.
  r.post("/v1/check", { schema: { body: CheckBody, tags: ["check"] }, config }, (req) => {
    const result = engine.checkNow(req.principal.workspaceId, req.body);
    return result instanceof Promise ? result.then(answer) : answer(result);
  });
  r.post(
    "/v1/reservations/:id/commit",
    { schema: { params: IdParams, body: CommitBody, tags: ["check"] }, config },
    async (req) => engine.commit(req.principal.workspaceId, req.params.id, req.body ?? {}),
  );
  r.post(
    "/v1/reservations/:id/release",
    { schema: { params: IdParams, tags: ["check"] }, config },
    async (req) => engine.release(req.principal.workspaceId, req.params.id),
  );
  r.get("/v1/reservations/:id", { schema: { params: IdParams, tags: ["check"] }, config }, async (req) => {
    const res = await engine.limiter.getReservation(req.principal.workspaceId, req.params.id);
    return {
      id: res.id,
      state: res.state,
      customer: res.customer,
      event: res.event,
      created_at: formatInstant(res.createdAt),
      expires_at: formatInstant(res.expiresAt),
    };
  });

  r.get(
    "/v1/customers/:id/limits",
    { schema: { params: IdParams, tags: ["customers"] }, config },
    async (req) => ({
      data: (await engine.customerLimits(req.principal.workspaceId, req.params.id)).map((l) => ({
        id: l.id,
        kind: l.kind,
        limit: l.limit,
        used: l.used,
        reserved: l.reserved,
        remaining: l.remaining,
        percent_used: l.percentUsed,
        reset_at: at(l.resetAt),
        enforcement: l.enforcement,
        state: l.state,
        ...(l.group ? { group: l.group } : {}),
      })),
    }),
  );
  r.get(
    "/v1/customers/:id/usage-percent",
    { schema: { params: IdParams, tags: ["customers"] }, config },
    async (req) => ({
      data: (await engine.customerLimits(req.principal.workspaceId, req.params.id)).map((l) => ({
        id: l.id,
        percent_used: l.percentUsed,
        reset_at: at(l.resetAt),
      })),
    }),
  );
}
