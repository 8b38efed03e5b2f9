import type { DueDelivery } from "@tollgate/core";
import { webhookPayload } from "@tollgate/core";
import { Webhook } from "standardwebhooks";
import { Agent, request } from "undici";
import { AddressNotAllowedError, guardedLookup, ipLiteral, isPrivateAddress } from "./address.js";

export interface SenderOptions {
  /** Whole attempt (connect, headers, body). @default 10_000 */
  timeoutMs: number;
  /** Bytes of a response body read before the connection is dropped. @default 65_536 */
  responseBytesMax: number;
  /** Reach loopback and private networks. @default false */
  allowPrivateAddresses: boolean;
  /** Seconds since the epoch for `webhook-timestamp` (the wall clock: receivers allow ±5 minutes). */
  nowSeconds: () => number;
}

export interface SendResult {
  /** HTTP status; null when no response came. */
  status: number | null;
  latencyMs: number;
  error: string | null;
}

export const USER_AGENT = "Tollgate-Webhooks/0.1";

/**
 * One HTTP attempt of a delivery, signed per Standard Webhooks. The receiver is untrusted: the
 * attempt is bounded in time (AbortSignal), redirects are not followed (a 3xx is a failure), at most
 * `responseBytesMax` of the body is read, and private addresses are refused unless allowed.
 */
export class WebhookSender {
  private readonly agent: Agent;

  constructor(private readonly options: SenderOptions) {
    this.agent = new Agent({
      connect: {
        timeout: options.timeoutMs,
        ...(options.allowPrivateAddresses ? {} : { lookup: guardedLookup as never }),
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4_000,
      connections: 16,
    });
  }

  /** The headers of one attempt: `webhook-signature` holds a `v1,` signature per valid secret. */
  sign(d: Pick<DueDelivery, "alert" | "secrets">, payload: string, seconds: number): Record<string, string> {
    const at = new Date(seconds * 1000);
    const signatures = d.secrets.map((s) => new Webhook(s).sign(d.alert.id, at, payload));
    return {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      "webhook-id": d.alert.id,
      "webhook-timestamp": String(seconds),
      "webhook-signature": signatures.join(" "),
    };
  }

  /** `stop` aborts the attempt (shutdown): the result then says `aborted`. */
  async send(d: DueDelivery, stop?: AbortSignal): Promise<SendResult & { aborted?: boolean }> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let url: URL;
    try {
      url = new URL(d.url);
    } catch {
      return { status: null, latencyMs: 0, error: "the endpoint URL is not valid" };
    }
    const literal = ipLiteral(url);
    if (literal && !this.options.allowPrivateAddresses && isPrivateAddress(literal)) {
      return { status: null, latencyMs: 0, error: new AddressNotAllowedError(url.hostname, literal).message };
    }
    const payload = webhookPayload(d.alert);
    const headers = this.sign(d, payload, this.options.nowSeconds());
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    const signal = stop ? AbortSignal.any([deadline, stop]) : deadline;
    try {
      const res = await request(url, {
        method: "POST",
        headers,
        body: payload,
        signal,
        dispatcher: this.agent,
      });
      // Read (and drop) at most responseBytesMax of the body, within the same deadline.
      let read = 0;
      try {
        for await (const chunk of res.body) {
          read += (chunk as Buffer).length;
          if (read >= this.options.responseBytesMax) break;
        }
      } catch {
        // A body cut short does not change the status the receiver answered.
      } finally {
        res.body.destroy();
      }
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return {
        status: res.statusCode,
        latencyMs: elapsed(),
        error: ok ? null : res.statusCode >= 300 && res.statusCode < 400 ? "redirect not followed" : null,
      };
    } catch (error) {
      if (stop?.aborted) return { status: null, latencyMs: elapsed(), error: "aborted", aborted: true };
      return { status: null, latencyMs: elapsed(), error: describe(error, deadline) };
    }
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => this.agent.destroy());
  }
}

function describe(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return "timed out";
  let e = error as (Error & { cause?: unknown; code?: string }) | undefined;
  // undici wraps connect errors; the lookup's refusal is the cause.
  for (let i = 0; i < 3 && e; i++) {
    if (e instanceof AddressNotAllowedError) return e.message;
    if (!e.cause) break;
    e = e.cause as Error & { cause?: unknown; code?: string };
  }
  const top = error as Error & { code?: string };
  const msg = top?.message ?? String(error);
  return (top?.code ? `${top.code}: ${msg}` : msg).slice(0, 500);
}
