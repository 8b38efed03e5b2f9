import { formatInstant, formatPicoUsd, type Reports } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { IdParams, WorkflowRunsQuery } from "../schemas.js";
import { pageInput, type RouteDeps, typed } from "./common.js";
import { count } from "./usage.js";

export function workflowRoutes(reports: Reports) {
  return (app: FastifyInstance, _deps: RouteDeps) => {
    typed(app).get(
      "/v1/workflows/:id/runs",
      {
        schema: { params: IdParams, querystring: WorkflowRunsQuery, tags: ["reports"] },
        config: { role: "service" },
      },
      async (req) => {
        const { limit } = pageInput(req.query);
        const page = await reports.workflowRuns(req.principal.workspaceId, req.params.id, {
          ...req.query,
          limit,
        });
        return {
          data: page.data.map((r) => ({
            run: r.run,
            customer: r.customer,
            total_steps: count(r.steps),
            requests: count(r.events),
            tokens_in: count(r.tokensIn),
            tokens_out: count(r.tokensOut),
            tokens_total: count(r.tokensIn + r.tokensOut),
            cost: formatPicoUsd(r.cost),
            started_at: formatInstant(r.startedAt),
            ended_at: formatInstant(r.endedAt),
          })),
          ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
        };
      },
    );
  };
}
