import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { presentCustomer, presentKey } from "../present.js";
import { CustomerBody, CustomerKeyBody, Id, IdParams, PageQuery } from "../schemas.js";
import { pageBody, pageInput, type RouteDeps, typed } from "./common.js";

export function customerRoutes(app: FastifyInstance, { engine, auth }: RouteDeps) {
  const r = typed(app);
  r.put(
    "/v1/customers/:id",
    { schema: { params: IdParams, body: CustomerBody, tags: ["customers"] } },
    async (req, reply) => {
      const { customer, created } = await engine.putCustomer(
        req.principal.workspaceId,
        req.params.id,
        req.body,
      );
      reply.code(created ? 201 : 200);
      return presentCustomer(customer);
    },
  );
  r.get(
    "/v1/customers/:id",
    { schema: { params: IdParams, tags: ["customers"] }, config: { role: "service" } },
    async (req) => presentCustomer(await engine.getCustomer(req.principal.workspaceId, req.params.id)),
  );
  r.get(
    "/v1/customers",
    { schema: { querystring: PageQuery, tags: ["customers"] }, config: { role: "service" } },
    async (req) =>
      pageBody(await engine.listCustomers(req.principal.workspaceId, pageInput(req.query)), presentCustomer),
  );

  r.post(
    "/v1/customers/:id/keys",
    { schema: { params: IdParams, body: CustomerKeyBody, tags: ["customers"] } },
    async (req, reply) => {
      const { record, key } = await engine.createCustomerKey(
        req.principal.workspaceId,
        req.params.id,
        req.body.name,
      );
      reply.code(201);
      return { ...presentKey(record), key };
    },
  );
  r.get("/v1/customers/:id/keys", { schema: { params: IdParams, tags: ["customers"] } }, async (req) => {
    await engine.getCustomer(req.principal.workspaceId, req.params.id);
    return { data: (await engine.listApiKeys(req.principal.workspaceId, req.params.id)).map(presentKey) };
  });
  r.delete(
    "/v1/customers/:id/keys/:key_id",
    { schema: { params: Type.Object({ id: Id, key_id: Id }), tags: ["customers"] } },
    async (req, reply) => {
      await engine.deleteApiKey(req.principal.workspaceId, req.params.key_id, req.params.id);
      auth.invalidate();
      reply.code(204);
    },
  );
}
