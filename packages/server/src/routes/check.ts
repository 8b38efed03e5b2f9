import { type CheckResult, formatInstant, type LimitOutcome } from "@tollgate/core";
import type { FastifyInstance, FastifyReply } from "fastify";
import { CheckBody, CommitBody, IdParams } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

const at = (ms: number | null) => (ms === null ? null : formatInstant(ms));

/** Strings JSON.stringify writes as they are, between quotes (no escape, no surrogate). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;
/** A JSON string literal: JSON.stringify(s), without the call for the plain strings ids and codes are. */
const str = (s: string) => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));
/** A JSON number: JSON.stringify(n) (a finite number's shortest form, else null). */
const num = (n: number) => (Number.isFinite(n) ? `${n}` : "null");
/**
 * An instant as a JSON string literal: formatInstant writes only digits, "+", "-", ":", ".", "T" and
 * "Z", which JSON.stringify leaves as they are; no PLAIN test (a regular expression run on the
 * formatted string, which is not flat yet, goes through V8's slow path and flattens it first).
 */
const instant = (ms: number) => `"${formatInstant(ms)}"`;

/** The leading fields of a limit's outcome, as `head` writes them, for the fields they were written from. */
interface Head {
  kind: string;
  enforcement: string;
  limit: number;
  allowed: boolean;
  exceeded: boolean;
  text: string;
  /** The last reset_at written for this limit (a quota's is the same until its period ends), and its text. */
  resetAt: number | null | undefined;
  resetText: string;
}
/** By limit id: the last head written for it (rewritten when any of its fields differs). */
const heads = new Map<string, Head>();
const HEADS_MAX = 4096;

/**
 * `{"id":…,"kind":…,"allowed":…,"exceeded":…,"enforcement":…,"limit":…,"remaining":` for an outcome:
 * the same for every check of a limit that is not exceeded, so written once and reused as one flat
 * string (building it took a dozen concatenations and three PLAIN tests per limit and check, and
 * the answer's pieces are copied one by one when it is flattened to be sent).
 */
function headOf(o: LimitOutcome): Head {
  const h = heads.get(o.id);
  if (
    h !== undefined &&
    h.kind === o.kind &&
    h.enforcement === o.enforcement &&
    h.limit === o.limit &&
    h.allowed === o.allowed &&
    h.exceeded === o.exceeded
  )
    return h;
  // join: a flat string (a chain of + is a tree of pieces, copied piece by piece each time it is sent).
  const text = [
    `{"id":${str(o.id)}`,
    `,"kind":${str(o.kind)}`,
    `,"allowed":${o.allowed}`,
    `,"exceeded":${o.exceeded}`,
    `,"enforcement":${str(o.enforcement)}`,
    `,"limit":${num(o.limit)}`,
    `,"remaining":`,
  ].join("");
  if (h === undefined && heads.size >= HEADS_MAX) heads.clear();
  const head: Head = {
    kind: o.kind,
    enforcement: o.enforcement,
    limit: o.limit,
    allowed: o.allowed,
    exceeded: o.exceeded,
    text,
    resetAt: undefined,
    resetText: "",
  };
  heads.set(o.id, head);
  return head;
}

/** `,"reset_at":…` of an outcome, reused while the limit's reset instant stays the same. */
function resetOf(h: Head, resetAt: number | null): string {
  if (resetAt === h.resetAt) return h.resetText;
  h.resetAt = resetAt;
  h.resetText = resetAt === null ? `,"reset_at":null` : `,"reset_at":${instant(resetAt)}`;
  return h.resetText;
}

/**
 * A limit's outcome as API.md shows it, as JSON text: the characters `JSON.stringify` gives for the
 * object { id, kind, allowed, exceeded, enforcement, limit, remaining, used?, reserved?, reset_at,
 * retry_after?, group? } (in this order), written directly instead of building the object and walking
 * it (packages/server/test/check-answer.test.ts pins the two together).
 */
export function outcomeJson(o: LimitOutcome): string {
  const head = headOf(o);
  let json = head.text + num(o.remaining);
  if (o.used !== undefined) json += `,"used":${num(o.used)}`;
  if (o.reserved !== undefined) json += `,"reserved":${num(o.reserved)}`;
  json += resetOf(head, o.resetAt);
  if (o.retryAfterMs !== null) json += `,"retry_after":${num(Math.ceil(o.retryAfterMs / 1000))}`;
  if (o.group) json += `,"group":${JSON.stringify(o.group)}`;
  return `${json}}`;
}

/**
 * POST /v1/check's answer as JSON text: `JSON.stringify` of { allowed, code?, limits, degraded?,
 * reservation? { id, expires_at } } (in this order).
 */
export function checkAnswerJson(result: CheckResult): string {
  let json = `{"allowed":${result.allowed}`;
  if (result.code) json += `,"code":${str(result.code)}`;
  json += `,"limits":[`;
  const limits = result.limits;
  for (let i = 0; i < limits.length; i++) json += (i === 0 ? "" : ",") + outcomeJson(limits[i]!);
  json += "]";
  // A limiter whose state store is unreachable answers by each limit's fail_mode (API.md).
  if ((result as { degraded?: boolean }).degraded) json += `,"degraded":true`;
  if (result.reservation)
    json += `,"reservation":{"id":${str(result.reservation.id)},"expires_at":${instant(result.reservation.expiresAt)}}`;
  return `${json}}`;
}

const JSON_TYPE = "application/json; charset=utf-8";

export function checkRoutes(app: FastifyInstance, { engine, metrics }: RouteDeps) {
  const r = typed(app);
  const config = { role: "service" as const };
  // The answer is written as JSON text here (Fastify sends a string with a JSON content type as it
  // is): no answer object per limit to build and JSON.stringify to walk. Same characters, same headers.
  const answer = (result: CheckResult, reply: FastifyReply): string => {
    if ((result as { degraded?: boolean }).degraded)
      metrics.checksDegraded.inc({ allowed: String(result.allowed) });
    reply.header("content-type", JSON_TYPE);
    return checkAnswerJson(result);
  };
  // Not an async handler: a check decided in memory is answered at once (Fastify sends a returned
  // value), without the two promises and microtask turns of an async function awaiting a promise.
  // A check that waits (a store load, a reservation) answers a promise; a throw is a rejection's twin.
  r.post("/v1/check", { schema: { body: CheckBody, tags: ["check"] }, config }, (req, reply) => {
    const result = engine.checkNow(req.principal.workspaceId, req.body);
    return result instanceof Promise ? result.then((r) => answer(r, reply)) : answer(result, reply);
  });
  r.post(
    "/v1/reservations/:id/commit",
    { schema: { params: IdParams, body: CommitBody, tags: ["check"] }, config },
    async (req) => engine.commit(req.principal.workspaceId, req.params.id, req.body ?? {}),
  );
  r.post(
    "/v1/reservations/:id/release",
    { schema: { params: IdParams, tags: ["check"] }, config },
    async (req) => engine.release(req.principal.workspaceId, req.params.id),
  );
  r.get("/v1/reservations/:id", { schema: { params: IdParams, tags: ["check"] }, config }, async (req) => {
    const res = await engine.limiter.getReservation(req.principal.workspaceId, req.params.id);
    return {
      id: res.id,
      state: res.state,
      customer: res.customer,
      event: res.event,
      created_at: formatInstant(res.createdAt),
      expires_at: formatInstant(res.expiresAt),
    };
  });

  r.get(
    "/v1/customers/:id/limits",
    { schema: { params: IdParams, tags: ["customers"] }, config },
    async (req) => ({
      data: (await engine.customerLimits(req.principal.workspaceId, req.params.id)).map((l) => ({
        id: l.id,
        kind: l.kind,
        limit: l.limit,
        used: l.used,
        reserved: l.reserved,
        remaining: l.remaining,
        percent_used: l.percentUsed,
        reset_at: at(l.resetAt),
        enforcement: l.enforcement,
        state: l.state,
        ...(l.group ? { group: l.group } : {}),
      })),
    }),
  );
  r.get(
    "/v1/customers/:id/usage-percent",
    { schema: { params: IdParams, tags: ["customers"] }, config },
    async (req) => ({
      data: (await engine.customerLimits(req.principal.workspaceId, req.params.id)).map((l) => ({
        id: l.id,
        percent_used: l.percentUsed,
        reset_at: at(l.resetAt),
      })),
    }),
  );
}
