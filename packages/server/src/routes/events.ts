import type { FastifyInstance } from "fastify";
import { EventsBody } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

export function eventRoutes(app: FastifyInstance, { engine, metrics }: RouteDeps) {
  typed(app).post(
    "/v1/events",
    { schema: { body: EventsBody, tags: ["events"] }, config: { role: "service" } },
    async (req, reply) => {
      const result = await engine.recordEvents(req.principal.workspaceId, req.body.events);
      metrics.eventsAccepted.inc(result.accepted);
      metrics.eventsDuplicate.inc(result.duplicates);
      reply.code(202);
      return result;
    },
  );
}
