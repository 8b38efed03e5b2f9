import type { TSchema } from "@sinclair/typebox";
import { type AnyLimit, presentLimit } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { ConcurrencyLimitBody, IdParams, OwnerQuery, QuotaBody, RateLimitBody } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

type Kind = "limit" | "rate_limit" | "concurrency_limit";

/** PUT/GET/DELETE for one kind of limit; the same id may exist once per scope (workspace, plan, customer). */
function limitResource(app: FastifyInstance, { engine }: RouteDeps, path: string, kind: Kind, body: TSchema) {
  const r = typed(app);
  const tags = ["limits"];
  r.put(`${path}/:id`, { schema: { params: IdParams, body, tags } }, async (req, reply) => {
    const input = req.body as Parameters<typeof engine.putLimit>[3];
    const { principal } = req;
    const { limit, created } = await engine.putLimit(
      principal.workspaceId,
      kind,
      req.params.id,
      input,
      principal.keyId,
    );
    reply.code(created ? 201 : 200);
    return presentLimit(limit);
  });
  r.get(
    `${path}/:id`,
    { schema: { params: IdParams, querystring: OwnerQuery, tags }, config: { role: "service" } },
    async (req) =>
      presentLimit(await engine.getLimit(req.principal.workspaceId, kind, req.params.id, req.query)),
  );
  r.get(
    `${path}`,
    { schema: { querystring: OwnerQuery, tags }, config: { role: "service" } },
    async (req) => {
      const all = await engine.listLimits(req.principal.workspaceId, kind);
      const { plan, customer } = req.query;
      const keep = (l: AnyLimit) =>
        (plan === undefined || (l.scope.kind === "plan" && l.scope.plan === plan)) &&
        (customer === undefined || (l.scope.kind === "customer" && l.scope.customer === customer));
      return { data: all.filter(keep).map(presentLimit) };
    },
  );
  r.delete(
    `${path}/:id`,
    { schema: { params: IdParams, querystring: OwnerQuery, tags } },
    async (req, reply) => {
      await engine.deleteLimit(
        req.principal.workspaceId,
        kind,
        req.params.id,
        req.query,
        req.principal.keyId,
      );
      reply.code(204);
    },
  );
}

export function limitRoutes(app: FastifyInstance, deps: RouteDeps) {
  limitResource(app, deps, "/v1/limits", "limit", QuotaBody);
  limitResource(app, deps, "/v1/rate-limits", "rate_limit", RateLimitBody);
  limitResource(app, deps, "/v1/concurrency-limits", "concurrency_limit", ConcurrencyLimitBody);
}
