import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { UsageEvent } from "@tollgate/core";
import { type RunningServer, startServer } from "../../packages/cli/src/runtime.js";
import { type FakeUpstream, startFakeUpstream } from "../sdk/fake-upstream.js";
import { type ApiResponse, call } from "../support/server.js";

export const TYPE = "llm.completion";

export interface ProxyEnv {
  url: string;
  adminKey: string;
  server: RunningServer;
  upstream: FakeUpstream;
  api(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse>;
  /** A customer (created if needed) with a fresh end-user key. */
  customerKey(customer: string): Promise<{ id: string; key: string }>;
  /** Every llm.completion event stored, in order. */
  events(): Promise<UsageEvent[]>;
  close(): Promise<void>;
}

/**
 * A Tollgate server on a real loopback port whose proxy forwards to a fake upstream (the official
 * clients speak HTTP, so app.inject is not enough). The API's own protection is off.
 */
export async function startProxyEnv(): Promise<ProxyEnv> {
  const upstream = await startFakeUpstream();
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-proxy-"));
  const adminKey = `tg_test_${Math.random().toString(36).slice(2)}`;
  const server = await startServer({
    dataDir,
    port: 0,
    adminKey,
    apiRateLimit: null,
    proxy: {
      openai: { baseUrl: `${upstream.url}/v1`, apiKey: "sk-upstream-openai" },
      anthropic: { baseUrl: upstream.url, apiKey: "sk-upstream-anthropic" },
    },
  });
  const api = (method: string, path: string, body?: unknown, key = adminKey) =>
    call(server.url, method, path, body, { key });
  return {
    url: server.url,
    adminKey,
    server,
    upstream,
    api,
    async customerKey(customer) {
      await api("PUT", `/v1/customers/${customer}`, { name: customer });
      const res = await api("POST", `/v1/customers/${customer}/keys`, { name: "end user" });
      if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
      return res.body;
    },
    async events() {
      const out: UsageEvent[] = [];
      await server.engine.store.scanEvents("default", { types: [TYPE] }, (e) => {
        out.push(e);
      });
      return out;
    },
    async close() {
      // A client that aborted a stream can leave connections that never carry a request (undici opens
      // them); the server would wait for them until its headers timeout.
      server.app.server.closeAllConnections();
      await server.close();
      await upstream.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Token values of an event, without the cost the engine adds from the price catalogue. */
export function tokenValues(e: UsageEvent): Record<string, number> {
  const { cost: _cost, ...rest } = e.values as Record<string, number>;
  return rest;
}

export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
