import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Engine } from "@tollgate/core";
import { bounds, encodeCursor, invalid, type Page } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import type { Authenticator } from "../auth.js";
import type { Metrics } from "../metrics.js";

export type App = FastifyInstance & { withTypeProvider: FastifyInstance["withTypeProvider"] };

export interface RouteDeps {
  engine: Engine;
  auth: Authenticator;
  metrics: Metrics;
}

export const typed = (app: FastifyInstance) => app.withTypeProvider<TypeBoxTypeProvider>();

export function pageInput(q: { cursor?: string; limit?: string }) {
  const limit = q.limit === undefined ? undefined : Number(q.limit);
  if (limit !== undefined && (limit < 1 || limit > bounds.pageSizeMax)) {
    throw invalid(`limit must be between 1 and ${bounds.pageSizeMax}`, { field: "query.limit" });
  }
  return { cursor: q.cursor, limit };
}

export function pageBody<T, U>(page: Page<T>, present: (t: T) => U) {
  return {
    data: page.data.map(present),
    ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
  };
}

export { encodeCursor };
