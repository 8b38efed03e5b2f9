import { formatPicoUsd } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { presentMeter, presentMeterRow } from "../present.js";
import { IdParams, MeterBody, MeterQuery, PageQuery } from "../schemas.js";
import { pageBody, pageInput, type RouteDeps, typed } from "./common.js";

export function meterRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  r.put(
    "/v1/meters/:id",
    { schema: { params: IdParams, body: MeterBody, tags: ["meters"] } },
    async (req, reply) => {
      const { meter, created } = await engine.putMeter(req.principal.workspaceId, req.params.id, req.body);
      reply.code(created ? 201 : 200);
      return presentMeter(meter);
    },
  );
  r.get(
    "/v1/meters/:id",
    { schema: { params: IdParams, tags: ["meters"] }, config: { role: "service" } },
    async (req) => presentMeter(await engine.getMeter(req.principal.workspaceId, req.params.id)),
  );
  r.get(
    "/v1/meters",
    { schema: { querystring: PageQuery, tags: ["meters"] }, config: { role: "service" } },
    async (req) =>
      pageBody(await engine.listMeters(req.principal.workspaceId, pageInput(req.query)), presentMeter),
  );
  r.get(
    "/v1/meters/:id/query",
    { schema: { params: IdParams, querystring: MeterQuery, tags: ["meters"] }, config: { role: "service" } },
    async (req) => {
      const ws = req.principal.workspaceId;
      const rows = await engine.queryMeter(ws, req.params.id, req.query);
      // Money is a decimal USD string: a meter over cost (sum, max, latest) prints its value so.
      const meter = await engine.getMeter(ws, req.params.id);
      const money =
        meter.value.includes("cost") && meter.aggregation !== "count" && meter.aggregation !== "unique_count";
      return {
        data: rows.map((row) =>
          money ? { ...presentMeterRow(row), value: formatPicoUsd(row.value) } : presentMeterRow(row),
        ),
      };
    },
  );
}
