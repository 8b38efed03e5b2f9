import type { FastifyInstance } from "fastify";
import { presentPlan } from "../present.js";
import { IdParams, PageQuery, PlanBody } from "../schemas.js";
import { pageBody, pageInput, type RouteDeps, typed } from "./common.js";

export function planRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  r.put(
    "/v1/plans/:id",
    { schema: { params: IdParams, body: PlanBody, tags: ["plans"] } },
    async (req, reply) => {
      const { workspaceId, keyId } = req.principal;
      const { plan, created } = await engine.putPlan(workspaceId, req.params.id, req.body, keyId);
      reply.code(created ? 201 : 200);
      return presentPlan(plan);
    },
  );
  r.get(
    "/v1/plans/:id",
    { schema: { params: IdParams, tags: ["plans"] }, config: { role: "service" } },
    async (req) => presentPlan(await engine.getPlan(req.principal.workspaceId, req.params.id)),
  );
  r.get(
    "/v1/plans",
    { schema: { querystring: PageQuery, tags: ["plans"] }, config: { role: "service" } },
    async (req) =>
      pageBody(await engine.listPlans(req.principal.workspaceId, pageInput(req.query)), presentPlan),
  );
}
