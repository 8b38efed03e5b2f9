import { Type } from "@sinclair/typebox";
import { notFound, pricingBounds } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { Instant } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

/** USD per 1M tokens: a decimal string ("2.5"), or a JSON number read as written. */
const Rate = Type.Union([
  Type.String({ pattern: "^\\d{1,10}(\\.\\d{1,9})?$", maxLength: 24 }),
  Type.Number({ minimum: 0 }),
]);
const Model = Type.String({ minLength: 1, maxLength: pricingBounds.modelLengthMax });

export const PriceBody = Type.Object(
  {
    input: Rate,
    output: Rate,
    cached_input: Type.Optional(Rate),
    reasoning: Type.Optional(Rate),
    effective_from: Type.Optional(Instant),
  },
  { additionalProperties: false },
);
export const PricingSettingsBody = Type.Object(
  {
    unknown_model: Type.Union([
      Type.Literal("tokens_only"),
      Type.Literal("reject"),
      Type.Literal("fallback"),
    ]),
    fallback_model: Type.Optional(Model),
  },
  { additionalProperties: false },
);
const ModelParams = Type.Object({ model: Model });

export function priceRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  r.get(
    "/v1/prices",
    {
      schema: {
        querystring: Type.Object({ model: Type.Optional(Model) }, { additionalProperties: false }),
        tags: ["prices"],
      },
      config: { role: "service" },
    },
    async (req) => ({
      data: await engine.pricing.listPrices(req.principal.workspaceId, req.query.model),
      source: engine.pricing.catalogue.source ?? null,
    }),
  );
  r.put(
    "/v1/prices/:model",
    { schema: { params: ModelParams, body: PriceBody, tags: ["prices"] } },
    async (req, reply) => {
      const { price, created } = await engine.pricing.putPrice(
        req.principal.workspaceId,
        req.params.model,
        req.body,
        engine.clock.now(),
      );
      reply.code(created ? 201 : 200);
      return price;
    },
  );
  r.delete(
    "/v1/prices/:model",
    {
      schema: {
        params: ModelParams,
        querystring: Type.Object({ effective_from: Type.Optional(Instant) }, { additionalProperties: false }),
        tags: ["prices"],
      },
    },
    async (req, reply) => {
      const removed = await engine.pricing.deletePrice(
        req.principal.workspaceId,
        req.params.model,
        req.query.effective_from,
      );
      if (!removed) throw notFound("price override", req.params.model);
      reply.code(204);
    },
  );
  r.post(
    "/v1/prices/reprice",
    {
      schema: {
        body: Type.Object(
          { from: Instant, to: Instant, model: Type.Optional(Model) },
          { additionalProperties: false },
        ),
        tags: ["prices"],
      },
    },
    async (req) => engine.reprice(req.principal.workspaceId, req.body),
  );
  r.get(
    "/v1/audit",
    {
      schema: {
        // Narrow to one kind of change (reprice, limit.put, limit.delete), a customer's or plan's limits.
        querystring: Type.Object(
          {
            kind: Type.Optional(Type.String({ maxLength: 64 })),
            customer: Type.Optional(Type.String({ maxLength: 256 })),
            plan: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        tags: ["prices"],
      },
    },
    async (req) => {
      const { kind, customer, plan } = req.query;
      const all = await engine.listAudit(req.principal.workspaceId);
      return {
        data: all.filter(
          (e) =>
            (kind === undefined || e.kind === kind) &&
            (customer === undefined || e.customer === customer) &&
            (plan === undefined || e.plan === plan),
        ),
      };
    },
  );
  r.get("/v1/settings/pricing", { schema: { tags: ["prices"] }, config: { role: "service" } }, async (req) =>
    engine.pricing.getSettings(req.principal.workspaceId),
  );
  r.put("/v1/settings/pricing", { schema: { body: PricingSettingsBody, tags: ["prices"] } }, async (req) =>
    engine.pricing.putSettings(req.principal.workspaceId, req.body, engine.clock.now()),
  );
}
