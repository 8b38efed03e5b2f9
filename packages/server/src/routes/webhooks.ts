import { randomBytes } from "node:crypto";
import { type DeliveryAttempt, type DeliveryRecord, formatInstant, type WebhookRecord } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { DeliveriesQuery, DeliveryParams, IdParams, RotateSecretBody, WebhookBody } from "../schemas.js";
import { pageInput, type RouteDeps, typed } from "./common.js";

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const mintWebhookSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

const at = (ms: number | null) => (ms === null ? null : formatInstant(ms));

export const presentWebhook = (w: WebhookRecord) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  description: w.description,
  created_at: at(w.createdAt),
  updated_at: at(w.updatedAt),
});

export const presentDelivery = (d: DeliveryRecord, attempts: DeliveryAttempt[]) => ({
  id: d.id,
  webhook_id: d.webhookId,
  alert_id: d.alertId,
  event_type: d.eventType,
  state: d.state,
  attempts: d.attempts,
  next_attempt_at: at(d.nextAttemptAt),
  last_status: d.lastStatus,
  last_latency_ms: d.lastLatencyMs,
  last_error: d.lastError,
  delivered_at: at(d.deliveredAt),
  created_at: at(d.createdAt),
  attempt_log: attempts.map((a) => ({
    attempt: a.attempt,
    at: at(a.at),
    status: a.status,
    latency_ms: a.latencyMs,
    error: a.error,
  })),
});

/** Webhook endpoints (admin): create, list, get, delete, rotate the secret; deliveries and redelivery. */
export function webhookRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  const tags = ["webhooks"];
  r.post("/v1/webhooks", { schema: { body: WebhookBody, tags } }, async (req, reply) => {
    const w = await engine.alerts.createWebhook(req.principal.workspaceId, req.body, mintWebhookSecret());
    reply.code(201);
    return { ...presentWebhook(w), secret: w.secret };
  });
  r.get("/v1/webhooks", { schema: { tags } }, async (req) => ({
    data: (await engine.alerts.listWebhooks(req.principal.workspaceId)).map(presentWebhook),
  }));
  r.get("/v1/webhooks/:id", { schema: { params: IdParams, tags } }, async (req) =>
    presentWebhook(await engine.alerts.getWebhook(req.principal.workspaceId, req.params.id)),
  );
  r.delete("/v1/webhooks/:id", { schema: { params: IdParams, tags } }, async (req, reply) => {
    await engine.alerts.deleteWebhook(req.principal.workspaceId, req.params.id);
    reply.code(204);
  });
  r.post(
    "/v1/webhooks/:id/rotate-secret",
    {
      schema: { params: IdParams, body: RotateSecretBody, tags },
      // The body is optional: none means the defaults.
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const ttl = req.body?.previous_secret_ttl_seconds;
      const w = await engine.alerts.rotateSecret(
        req.principal.workspaceId,
        req.params.id,
        mintWebhookSecret(),
        ttl === undefined ? undefined : ttl * 1000,
      );
      return {
        ...presentWebhook(w),
        secret: w.secret,
        previous_secret_expires_at: at(w.previousSecretUntil),
      };
    },
  );
  r.get(
    "/v1/webhooks/:id/deliveries",
    { schema: { params: IdParams, querystring: DeliveriesQuery, tags } },
    async (req) => {
      const { limit } = pageInput(req.query);
      const page = await engine.alerts.listDeliveries(req.principal.workspaceId, req.params.id, {
        state: req.query.state,
        cursor: req.query.cursor,
        limit,
      });
      return {
        data: page.data.map(({ delivery, attempts }) => presentDelivery(delivery, attempts)),
        ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
      };
    },
  );
  r.post(
    "/v1/webhooks/:id/deliveries/:delivery_id/redeliver",
    { schema: { params: DeliveryParams, tags } },
    async (req, reply) => {
      const d = await engine.alerts.redeliver(
        req.principal.workspaceId,
        req.params.id,
        req.params.delivery_id,
      );
      reply.code(202);
      return presentDelivery(d, []);
    },
  );
}
