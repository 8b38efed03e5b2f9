import { formatInstant, type LimitOutcome } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { CheckBody, CommitBody, IdParams } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

const at = (ms: number | null) => (ms === null ? null : formatInstant(ms));
const seconds = (ms: number | null) => (ms === null ? undefined : Math.ceil(ms / 1000));

export const presentOutcome = (o: LimitOutcome) => ({
  id: o.id,
  kind: o.kind,
  allowed: o.allowed,
  exceeded: o.exceeded,
  enforcement: o.enforcement,
  limit: o.limit,
  remaining: o.remaining,
  ...(o.used !== undefined ? { used: o.used } : {}),
  ...(o.reserved !== undefined ? { reserved: o.reserved } : {}),
  reset_at: at(o.resetAt),
  ...(o.retryAfterMs !== null ? { retry_after: seconds(o.retryAfterMs) } : {}),
  ...(o.group ? { group: o.group } : {}),
});

export function checkRoutes(app: FastifyInstance, { engine, metrics }: RouteDeps) {
  const r = typed(app);
  const config = { role: "service" as const };
  r.post("/v1/check", { schema: { body: CheckBody, tags: ["check"] }, config }, async (req) => {
    const result = await engine.check(req.principal.workspaceId, req.body);
    if ((result as { degraded?: boolean }).degraded)
      metrics.checksDegraded.inc({ allowed: String(result.allowed) });
    return {
      allowed: result.allowed,
      ...(result.code ? { code: result.code } : {}),
      limits: result.limits.map(presentOutcome),
      // A limiter whose state store is unreachable answers by each limit's fail_mode (API.md).
      ...((result as { degraded?: boolean }).degraded ? { degraded: true } : {}),
      ...(result.reservation
        ? {
            reservation: {
              id: result.reservation.id,
              expires_at: formatInstant(result.reservation.expiresAt),
            },
          }
        : {}),
    };
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
