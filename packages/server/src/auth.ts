import { randomBytes } from "node:crypto";
import { type ApiKeyRecord, type Engine, type Role, TollgateError } from "@tollgate/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { digestsEqual, keyMinter } from "./crypto.js";
import type { ApiProtection } from "./protect.js";

export interface Principal {
  workspaceId: string;
  role: Role | "customer";
  keyId: string;
  /** Set for end-user keys (proxy routes only). */
  customerId?: string;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Least role the route needs; "public" routes take no key; "customer" routes (the proxy) take only
     * end-user keys. @default "admin" */
    role?: Role | "public" | "customer";
  }
}

const CACHE_MAX = 10_000;
const CACHE_TTL_MS = 30_000;

/**
 * Bearer keys on every /v1 route. Keys are looked up by their SHA-256 and compared in constant time;
 * lookups are cached briefly, and the cache is dropped whenever a key is deleted.
 */
export class Authenticator {
  private readonly cache = new Map<string, { key: ApiKeyRecord | null; until: number }>();
  /** Admin credentials that exist only inside this process (for `serve --config`); never stored. */
  private readonly internal = new Map<string, ApiKeyRecord>();
  constructor(private readonly engine: Engine) {}

  /** A key that acts as admin of the workspace for this process's own in-process requests. */
  grantInternal(workspaceId: string): string {
    const key = `tgi_${randomBytes(24).toString("base64url")}`;
    const hash = keyMinter.hash(key);
    this.internal.set(hash, {
      id: "internal",
      workspaceId,
      name: "internal",
      role: "admin",
      customerId: null,
      prefix: "tgi_",
      hash,
      createdAt: 0,
      lastUsedAt: null,
    });
    return key;
  }

  async resolve(authorization: string | undefined): Promise<ApiKeyRecord> {
    const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) throw new TollgateError("UNAUTHORIZED", "missing or malformed Authorization: Bearer header");
    const hash = keyMinter.hash(match[1]!);
    const now = Date.now();
    const internal = this.internal.get(hash);
    if (internal) return internal;
    let entry = this.cache.get(hash);
    if (!entry || entry.until < now) {
      const key = (await this.engine.authenticate(match[1]!)) ?? null;
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      entry = { key, until: now + CACHE_TTL_MS };
      this.cache.set(hash, entry);
    }
    if (!entry.key || !digestsEqual(entry.key.hash, hash)) {
      throw new TollgateError("UNAUTHORIZED", "invalid API key");
    }
    return entry.key;
  }

  invalidate(): void {
    this.cache.clear();
  }
}

export function installAuth(
  app: FastifyInstance,
  auth: Authenticator,
  protection: ApiProtection | null,
): void {
  app.decorateRequest("principal", null as unknown as Principal);
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    const needed = request.routeOptions.config.role ?? "admin";
    if (needed === "public" || !request.routeOptions.url) return;
    // The proxy also takes the key as x-api-key: the Anthropic client sends it there.
    const xApiKey = needed === "customer" ? request.headers["x-api-key"] : undefined;
    const key = await auth.resolve(
      request.headers.authorization ?? (typeof xApiKey === "string" ? `Bearer ${xApiKey}` : undefined),
    );
    if (needed === "customer") {
      if (key.role !== "customer" || !key.customerId) {
        throw new TollgateError(
          "FORBIDDEN",
          "the proxy takes an end-user key (POST /v1/customers/{id}/keys)",
        );
      }
      request.principal = {
        workspaceId: key.workspaceId,
        role: key.role,
        keyId: key.id,
        customerId: key.customerId,
      };
      if (protection) protection.admit(key.id, reply);
      return;
    }
    if (key.role === "customer") {
      throw new TollgateError("FORBIDDEN", "an end-user key can only call the proxy");
    }
    if (needed === "admin" && key.role !== "admin") {
      throw new TollgateError("FORBIDDEN", "this call needs an admin key");
    }
    request.principal = { workspaceId: key.workspaceId, role: key.role, keyId: key.id };
    if (protection && key.id !== "internal") protection.admit(key.id, reply);
  });
}
