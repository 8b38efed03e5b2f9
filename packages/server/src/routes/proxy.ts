import { once } from "node:events";
import { PassThrough } from "node:stream";
import { type Engine, TollgateError } from "@tollgate/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type Admission, admit, denialError, rateLimitHeaders } from "../proxy/admission.js";
import { DEFAULT_BASE_URL, type ProxyOptions, type UpstreamConfig } from "../proxy/config.js";
import {
  anthropicMessages,
  chatCompletions,
  type Endpoint,
  embeddings,
  responses,
} from "../proxy/providers.js";
import { SseParser } from "../proxy/sse.js";
import type { Values } from "../proxy/usage.js";
import type { RouteDeps } from "./common.js";

/** Provider request bodies can carry images and long documents. */
const PROXY_BODY_BYTES_MAX = 32 * 1024 * 1024;
const EVENT_TYPE = "llm.completion";

/** Request headers passed on to the provider (never the caller's credentials). */
const FORWARDED_HEADERS = ["anthropic-version", "anthropic-beta", "openai-beta", "idempotency-key"];

/**
 * POST /proxy/openai/v1/{chat/completions,responses,embeddings} and /proxy/anthropic/v1/messages, keyed
 * by end-user keys: check + reserve, forward, commit the usage the provider reported (streams pass
 * through event by event; the usage is counted as they pass and the stream is cut where a hard limit
 * runs out). One `llm.completion` event per call, dimensions model, key, provider.
 */
export function proxyRoutes(app: FastifyInstance, { engine }: RouteDeps, options: ProxyOptions): void {
  const routes: [string, Endpoint][] = [
    ["/proxy/openai/v1/chat/completions", chatCompletions],
    ["/proxy/openai/v1/responses", responses],
    ["/proxy/openai/v1/embeddings", embeddings],
    ["/proxy/anthropic/v1/messages", anthropicMessages],
  ];
  for (const [url, endpoint] of routes) {
    app.post(
      url,
      { config: { role: "customer" }, bodyLimit: PROXY_BODY_BYTES_MAX, schema: { hide: true } },
      (request, reply) => proxyCall(engine, options, endpoint, request, reply),
    );
  }
}

async function proxyCall(
  engine: Engine,
  options: ProxyOptions,
  endpoint: Endpoint,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const upstream = options[endpoint.provider];
  if (!upstream) {
    throw new TollgateError("UNAVAILABLE", `no upstream is configured for ${endpoint.provider}`, {
      provider: endpoint.provider,
    });
  }
  const body = request.body as Record<string, unknown> | null;
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new TollgateError("INVALID_REQUEST", "the body must be a JSON object", { field: "body" });
  }
  if (typeof body.model !== "string" || body.model === "") {
    throw new TollgateError("INVALID_REQUEST", "model is required", { field: "model" });
  }
  const { workspaceId, keyId, customerId } = request.principal;
  if (!customerId) throw new TollgateError("FORBIDDEN", "the proxy takes an end-user key");

  const estimateIn = endpoint.estimateIn(body);
  const requested = endpoint.requestedOut(body);
  const wantOut = requested ?? (endpoint === embeddings ? 0 : (options.defaultMaxOutputTokens ?? 4096));
  const dimensions = { model: body.model, key: keyId, provider: endpoint.provider };
  const admitted = await admit(
    engine,
    workspaceId,
    { type: EVENT_TYPE, customer: customerId, values: { tokens_in: estimateIn }, dimensions },
    wantOut,
    options.reservationTtlSeconds ?? 600,
  );
  const now = engine.clock.now();
  if (!admitted.ok) {
    reply.headers(rateLimitHeaders(admitted.result, now));
    throw denialError(admitted.result, now);
  }
  const admission = admitted.admission;
  reply.headers(rateLimitHeaders(admission.result, now));

  const meter = new CallMeter(engine, workspaceId, admission, dimensions, estimateIn);
  // The provider is told the most it may produce when a limit bounds it (a cut stream is the fallback).
  // Only ever lowered: a cap above what the model supports (a big quota's room) is an error upstream.
  const cap = admission.room < wantOut ? admission.room : undefined;
  const upstreamBody = endpoint.prepare(body, cap);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.upstreamTimeoutMs ?? 600_000);
  let res: Response;
  try {
    res = await fetch(upstreamUrl(upstream, endpoint), {
      method: "POST",
      headers: upstreamHeaders(endpoint, upstream, request),
      body: JSON.stringify(upstreamBody),
      signal: controller.signal,
    });
  } catch (error) {
    clearTimeout(timer);
    await meter.release();
    request.log.warn({ err: error, provider: endpoint.provider }, "proxy: upstream unreachable");
    throw new TollgateError("UNAVAILABLE", `the ${endpoint.provider} upstream could not be reached`);
  }
  clearTimeout(timer);

  const contentType = res.headers.get("content-type") ?? "application/json";
  if (!res.ok || !res.body) {
    // The provider refused or failed: nothing was generated; its answer goes back as it is.
    await meter.release();
    const text = await res.text().catch(() => "");
    reply.code(res.status).header("content-type", contentType);
    return reply.send(text);
  }

  if (!endpoint.streaming(body) || !contentType.includes("text/event-stream")) {
    const text = await res.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    try {
      if (json)
        await meter.commit(endpoint.usage(json), typeof json.model === "string" ? json.model : undefined);
      else await meter.commit({ tokens_in: estimateIn, tokens_out: 0 });
    } catch (error) {
      // The provider answered and the caller gets it; the hold expires by its TTL.
      request.log.error({ err: error }, "proxy: commit failed");
    }
    reply.code(res.status).header("content-type", contentType);
    return reply.send(text);
  }

  // ---- streaming: forward event by event, meter as they pass --------------------------------------
  const out = new PassThrough();
  reply.code(res.status).header("content-type", contentType).header("cache-control", "no-cache");
  let clientGone = false;
  const socket = request.raw.socket;
  const gone = new Promise<void>((resolve) => {
    reply.raw.once("close", () => {
      if (!reply.raw.writableFinished) {
        clientGone = true;
        // The response can never complete: drop the connection, or the server would count it busy.
        socket?.destroy();
      }
      resolve();
    });
  });
  reply.send(out);
  void pump(res.body, out, endpoint, body, meter, admission, controller, () => clientGone, gone, request);
  return reply;
}

/** Holds one call's reservation and commits it exactly once. */
class CallMeter {
  private settled = false;
  constructor(
    private readonly engine: Engine,
    private readonly workspaceId: string,
    private readonly admission: Admission,
    private readonly dimensions: Record<string, string>,
    readonly estimateIn: number,
  ) {}

  async commit(values: Values, model?: string): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.engine.commit(this.workspaceId, this.admission.reservationId, {
      event: { values, dimensions: model ? { ...this.dimensions, model } : this.dimensions },
    });
  }

  async release(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.engine.release(this.workspaceId, this.admission.reservationId);
  }
}

async function pump(
  body: ReadableStream<Uint8Array>,
  out: PassThrough,
  endpoint: Endpoint,
  requestBody: Record<string, unknown>,
  meter: CallMeter,
  admission: Admission,
  controller: AbortController,
  clientGone: () => boolean,
  gone: Promise<void>,
  request: FastifyRequest,
): Promise<void> {
  const observe = endpoint.observer(requestBody);
  const parser = new SseParser();
  const reader = body.getReader();
  /** Output tokens in the events received from the provider (what it generated). */
  let generated = 0;
  /** Output tokens in the events passed on to the client. */
  let delivered = 0;
  let usage: Values | undefined;
  let final = false;
  let model: string | undefined;
  let cut = false;
  let failed = false;

  const write = async (text: string) => {
    if (out.write(text)) return;
    await Promise.race([once(out, "drain"), gone]);
  };

  try {
    outer: for (;;) {
      if (clientGone()) break;
      const next = await Promise.race([reader.read(), gone.then(() => null)]);
      if (next === null) break;
      const events = next.done ? parser.end() : parser.push(next.value);
      for (const event of events) {
        const o = observe(event);
        generated += o.tokens;
        if (o.model) model = o.model;
        if (o.usage) usage = { ...usage, ...o.usage };
        if (o.final) final = true;
        if (delivered + o.tokens > admission.room) {
          // The customer's hard limit runs out within this event: end the stream cleanly instead.
          cut = true;
          generated -= o.tokens; // never delivered, and the provider is stopped below
          break outer;
        }
        delivered += o.tokens;
        if (!o.hide) await write(event.raw);
        if (clientGone()) break outer;
      }
      if (next.done) break;
    }
  } catch (error) {
    failed = true;
    request.log.warn({ err: error }, "proxy: upstream stream failed");
  }

  if (cut || clientGone() || failed) {
    controller.abort();
    reader.cancel().catch(() => {});
  }

  // The provider's own final count when it reported one; otherwise what was counted as it streamed
  // (a cut or abandoned stream is charged for what was generated, never more than the limit allows).
  let values: Values;
  if (final && usage && !cut) values = usage;
  else {
    const tokensOut = cut ? delivered : generated;
    values = { tokens_in: usage?.tokens_in ?? meter.estimateIn, tokens_out: tokensOut };
    if (usage?.cached_tokens_in !== undefined) values.cached_tokens_in = usage.cached_tokens_in;
  }
  // Committed before the stream ends: a client that has read the whole stream finds its usage recorded.
  try {
    if (failed && generated === 0 && !usage) await meter.release();
    else await meter.commit(values, model);
  } catch (error) {
    request.log.error({ err: error }, "proxy: commit failed");
  }
  if (cut) {
    const e = denialError({ allowed: false, code: admission.cutCode, limits: [] }, Date.now()).toBody().error;
    await write(
      endpoint.errorEvent({
        code: e.code,
        message: `${e.message}: the stream was ended at the customer's limit`,
        status: e.status,
        details: { delivered_tokens: delivered },
      }),
    ).catch(() => {});
  }
  out.end();
}

function upstreamUrl(upstream: UpstreamConfig, endpoint: Endpoint): string {
  const base = (upstream.baseUrl ?? DEFAULT_BASE_URL[endpoint.provider]).replace(/\/+$/, "");
  return base + endpoint.path;
}

function upstreamHeaders(endpoint: Endpoint, upstream: UpstreamConfig, request: FastifyRequest) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const name of FORWARDED_HEADERS) {
    const v = request.headers[name];
    if (typeof v === "string") headers[name] = v;
  }
  if (endpoint.provider === "anthropic") {
    headers["anthropic-version"] ??= "2023-06-01";
    if (upstream.apiKey) headers["x-api-key"] = upstream.apiKey;
  } else if (upstream.apiKey) {
    headers.authorization = `Bearer ${upstream.apiKey}`;
  }
  return headers;
}
