import { type Alert, formatInstant } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { AlertsQuery } from "../schemas.js";
import { pageInput, type RouteDeps, typed } from "./common.js";

export const presentAlert = (a: Alert) => ({
  id: a.id,
  type: a.type,
  customer: a.customer,
  created_at: formatInstant(a.createdAt),
  data: a.data,
});

/** GET /v1/alerts: every alert raised, newest first. */
export function alertRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  r.get(
    "/v1/alerts",
    { schema: { querystring: AlertsQuery, tags: ["alerts"] }, config: { role: "service" } },
    async (req) => {
      const { limit } = pageInput(req.query);
      const page = await engine.alerts.listAlerts(req.principal.workspaceId, {
        type: req.query.type,
        customer: req.query.customer,
        cursor: req.query.cursor,
        limit,
      });
      return {
        data: page.data.map(presentAlert),
        ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
      };
    },
  );
}
