import { randomBytes, timingSafeEqual } from "node:crypto";
import { type ApiKeyRecord, type Engine, type Role, TollgateError } from "@tollgate/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { keyMinter } from "./crypto.js";
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

/**
 * A cached key lookup, under the presented key's SHA-256: the record when that digest matched the
 * stored one (compared in constant time once, when the lookup was cached), else null; until when.
 */
interface CachedKey {
  key: ApiKeyRecord | null;
  until: number;
}
const CACHE_TTL_MS = 30_000;

/**
 * Bearer keys on every /v1 route. Keys are looked up by their SHA-256 and compared in constant time;
 * lookups are cached briefly, and the cache is dropped whenever a key is deleted.
 */
export class Authenticator {
  private readonly cache = new Map<string, CachedKey>();
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
    const hash = this.hashOf(authorization);
    return this.cached(hash, Date.now()) ?? this.load(authorization!, hash);
  }

  /**
   * The key of an Authorization header when its lookup is cached (the common case, answered
   * without a promise), or undefined: then call `resolve`. Throws UNAUTHORIZED like `resolve`.
   */
  resolveCached(authorization: string | undefined): ApiKeyRecord | undefined {
    return this.cached(this.hashOf(authorization), Date.now());
  }

  private hashOf(authorization: string | undefined): string {
    const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) throw new TollgateError("UNAUTHORIZED", "missing or malformed Authorization: Bearer header");
    return keyMinter.hash(match[1]!);
  }

  private cached(hash: string, now: number): ApiKeyRecord | undefined {
    const internal = this.internal.get(hash);
    if (internal) return internal;
    const entry = this.cache.get(hash);
    if (!entry || entry.until < now) return undefined;
    return recordOf(entry);
  }

  private async load(authorization: string, hash: string): Promise<ApiKeyRecord> {
    const now = Date.now();
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)![1]!;
    const key = (await this.engine.authenticate(bearer)) ?? null;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    // The entry is found again only under this same digest: its comparison's outcome is cached with it.
    const entry: CachedKey = {
      key: key && sameDigest(key.hash, hash) ? key : null,
      until: now + CACHE_TTL_MS,
    };
    this.cache.set(hash, entry);
    return recordOf(entry);
  }

  invalidate(): void {
    this.cache.clear();
  }
}

function recordOf(entry: CachedKey): ApiKeyRecord {
  if (entry.key === null) throw new TollgateError("UNAUTHORIZED", "invalid API key");
  return entry.key;
}

/** Two hex SHA-256 digests compared in constant time. */
function sameDigest(stored: string, presented: string): boolean {
  const a = Buffer.from(stored, "hex");
  const b = Buffer.from(presented, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

export function installAuth(
  app: FastifyInstance,
  auth: Authenticator,
  protection: ApiProtection | null,
): void {
  app.decorateRequest("principal", null as unknown as Principal);
  // A callback hook, not an async one: with the key's lookup cached (nearly every request), the
  // request goes on without a promise and a microtask turn.
  app.addHook("onRequest", (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const route = request.routeOptions; // a getter that builds an object: read once
    const needed = route.config.role ?? "admin";
    if (needed === "public" || !route.url) return done();
    // The proxy also takes the key as x-api-key: the Anthropic client sends it there.
    const xApiKey = needed === "customer" ? request.headers["x-api-key"] : undefined;
    const authorization =
      request.headers.authorization ?? (typeof xApiKey === "string" ? `Bearer ${xApiKey}` : undefined);
    let key: ApiKeyRecord | undefined;
    try {
      key = auth.resolveCached(authorization);
      if (key !== undefined) admit(request, reply, needed, key, protection);
    } catch (error) {
      return done(error as Error);
    }
    if (key !== undefined) return done();
    auth.resolve(authorization).then(
      (loaded) => {
        try {
          admit(request, reply, needed, loaded, protection);
        } catch (error) {
          return done(error as Error);
        }
        done();
      },
      (error: Error) => done(error),
    );
  });
}

/** Whether the key may call a route that needs `needed`; sets the request's principal. */
function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  needed: Role | "customer",
  key: ApiKeyRecord,
  protection: ApiProtection | null,
): void {
  if (needed === "customer") {
    if (key.role !== "customer" || !key.customerId) {
      throw new TollgateError("FORBIDDEN", "the proxy takes an end-user key (POST /v1/customers/{id}/keys)");
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
}
