import { conflict } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { presentKey } from "../present.js";
import { ApiKeyBody, IdParams } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

export function apiKeyRoutes(app: FastifyInstance, { engine, auth }: RouteDeps) {
  const r = typed(app);
  r.post("/v1/api-keys", { schema: { body: ApiKeyBody, tags: ["keys"] } }, async (req, reply) => {
    const { record, key } = await engine.createApiKey(
      req.principal.workspaceId,
      req.body.name,
      req.body.role,
    );
    reply.code(201);
    return { ...presentKey(record), key };
  });
  r.get("/v1/api-keys", { schema: { tags: ["keys"] } }, async (req) => ({
    data: (await engine.listApiKeys(req.principal.workspaceId)).map(presentKey),
  }));
  r.delete("/v1/api-keys/:id", { schema: { params: IdParams, tags: ["keys"] } }, async (req, reply) => {
    const ws = req.principal.workspaceId;
    const keys = await engine.listApiKeys(ws);
    const target = keys.find((k) => k.id === req.params.id);
    if (target?.role === "admin" && keys.filter((k) => k.role === "admin").length === 1) {
      throw conflict("this is the workspace's last admin key; create another before deleting it");
    }
    await engine.deleteApiKey(ws, req.params.id);
    auth.invalidate();
    reply.code(204);
  });
}
