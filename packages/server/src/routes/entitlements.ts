import { Type } from "@sinclair/typebox";
import { customerEntitlements, customerOverage, getModelClasses, putModelClasses } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { IdParams, Instant } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

const ClassName = Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z_][A-Za-z0-9_.:-]*$" });

/** PUT /v1/settings/model-classes: the workspace's map of models (or "prefix*") to classes. */
export const ModelClassesBody = Type.Object(
  {
    models: Type.Record(Type.String({ minLength: 1, maxLength: 256 }), ClassName, { maxProperties: 4096 }),
    default_class: Type.Optional(Type.Union([ClassName, Type.Null()])),
  },
  { additionalProperties: false },
);

export const OverageQuery = Type.Object(
  {
    /** An instant in the billing period to report. @default now */
    at: Type.Optional(Instant),
    /** @default "month" */
    period: Type.Optional(Type.Union([Type.Literal("month"), Type.Literal("week")])),
  },
  { additionalProperties: false },
);

/** Plans and entitlements: a customer's entitlements and overage, and the workspace's model classes. */
export function entitlementRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  const tags = ["plans"];
  r.get(
    "/v1/customers/:id/entitlements",
    { schema: { params: IdParams, tags }, config: { role: "service" } },
    async (req) => customerEntitlements(engine, req.principal.workspaceId, req.params.id),
  );
  r.get(
    "/v1/customers/:id/overage",
    { schema: { params: IdParams, querystring: OverageQuery, tags }, config: { role: "service" } },
    async (req) => customerOverage(engine, req.principal.workspaceId, req.params.id, req.query),
  );
  r.get("/v1/settings/model-classes", { schema: { tags }, config: { role: "service" } }, async (req) =>
    getModelClasses(engine.store, req.principal.workspaceId),
  );
  r.put("/v1/settings/model-classes", { schema: { body: ModelClassesBody, tags } }, async (req) =>
    putModelClasses(engine, req.principal.workspaceId, req.body),
  );
}
