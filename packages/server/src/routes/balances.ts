import { Type } from "@sinclair/typebox";
import { type BalanceRule, bounds, formatPicoUsd, ledgerBounds } from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { Amount, Id, IdParams, Instant, Money, PageQuery } from "../schemas.js";
import { pageInput, type RouteDeps, typed } from "./common.js";

const IdempotencyKey = Type.String({ minLength: 1, maxLength: ledgerBounds.idLengthMax });
const Description = Type.String({ maxLength: ledgerBounds.descriptionLengthMax });

export const CreditBody = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: bounds.amountMax }),
    idempotency_key: IdempotencyKey,
    expires_at: Type.Optional(Instant),
    priority: Type.Optional(
      Type.Integer({ minimum: ledgerBounds.priorityMin, maximum: ledgerBounds.priorityMax }),
    ),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export const DebitBody = Type.Object(
  { amount: Amount, idempotency_key: IdempotencyKey, description: Type.Optional(Description) },
  { additionalProperties: false },
);
export const BalanceSettingsBody = Type.Object(
  {
    minimum_balance: Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { additionalProperties: false },
);
export const BalanceRuleBody = Type.Object(
  {
    meter: Id,
    credits_per_unit: Type.Integer({ minimum: 1, maximum: bounds.amountMax }),
    unit: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: bounds.amountMax }), Money])),
  },
  { additionalProperties: false },
);

const presentRule = (r: BalanceRule, costMeter: boolean) => ({
  id: r.id,
  meter: r.meter,
  credits_per_unit: r.creditsPerUnit,
  unit: costMeter ? formatPicoUsd(r.unit) : r.unit,
});

export function balanceRoutes(app: FastifyInstance, { engine }: RouteDeps) {
  const r = typed(app);
  const result = (applied: { replayed: boolean; kind: string }, view: unknown) => ({
    replayed: applied.replayed,
    ...(view as object),
  });

  r.post(
    "/v1/customers/:id/balance/credits",
    { schema: { params: IdParams, body: CreditBody, tags: ["balances"] } },
    async (req, reply) => {
      const ws = req.principal.workspaceId;
      const applied = await engine.creditBalance(ws, req.params.id, req.body);
      reply.code(applied.replayed ? 200 : 201);
      return result(applied, await engine.balance(ws, req.params.id));
    },
  );
  r.post(
    "/v1/customers/:id/balance/debits",
    { schema: { params: IdParams, body: DebitBody, tags: ["balances"] }, config: { role: "service" } },
    async (req, reply) => {
      const ws = req.principal.workspaceId;
      const applied = await engine.debitBalance(ws, req.params.id, req.body);
      reply.code(applied.replayed ? 200 : 201);
      return result(applied, await engine.balance(ws, req.params.id));
    },
  );
  r.put(
    "/v1/customers/:id/balance",
    { schema: { params: IdParams, body: BalanceSettingsBody, tags: ["balances"] } },
    async (req) =>
      engine.setMinimumBalance(req.principal.workspaceId, req.params.id, req.body.minimum_balance),
  );
  r.get(
    "/v1/customers/:id/balance",
    { schema: { params: IdParams, tags: ["balances"] }, config: { role: "service" } },
    async (req) => engine.balance(req.principal.workspaceId, req.params.id),
  );
  r.get(
    "/v1/customers/:id/balance/transactions",
    { schema: { params: IdParams, querystring: PageQuery, tags: ["balances"] }, config: { role: "service" } },
    async (req) => engine.balanceTransactions(req.principal.workspaceId, req.params.id, pageInput(req.query)),
  );

  const isCostMeter = async (ws: string, meter: string) => {
    try {
      return (await engine.getMeter(ws, meter)).value.includes("cost");
    } catch {
      return false;
    }
  };
  r.put(
    "/v1/balance-rules/:id",
    { schema: { params: IdParams, body: BalanceRuleBody, tags: ["balances"] } },
    async (req, reply) => {
      const ws = req.principal.workspaceId;
      const { rule, created } = await engine.putBalanceRule(ws, req.params.id, req.body);
      reply.code(created ? 201 : 200);
      return presentRule(rule, await isCostMeter(ws, rule.meter));
    },
  );
  r.get(
    "/v1/balance-rules/:id",
    { schema: { params: IdParams, tags: ["balances"] }, config: { role: "service" } },
    async (req) => {
      const ws = req.principal.workspaceId;
      const rule = await engine.getBalanceRule(ws, req.params.id);
      return presentRule(rule, await isCostMeter(ws, rule.meter));
    },
  );
  r.get("/v1/balance-rules", { schema: { tags: ["balances"] }, config: { role: "service" } }, async (req) => {
    const ws = req.principal.workspaceId;
    const rules = await engine.listBalanceRules(ws);
    return {
      data: await Promise.all(rules.map(async (x) => presentRule(x, await isCostMeter(ws, x.meter)))),
    };
  });
  r.delete(
    "/v1/balance-rules/:id",
    { schema: { params: IdParams, tags: ["balances"] } },
    async (req, reply) => {
      await engine.deleteBalanceRule(req.principal.workspaceId, req.params.id);
      reply.code(204);
    },
  );
}
