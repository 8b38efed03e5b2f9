import { existsSync, readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateOpenApi, OPENAPI_PATH } from "../../packages/server/scripts/write-openapi.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** GET /openapi.json: a valid OpenAPI 3.1 document of every /v1 route, equal to docs/openapi.json. */

type Json = Record<string, unknown>;
let t: TestServer;
let spec: Json;

beforeAll(async () => {
  t = await startTestServer();
  const res = await t.api("GET", "/openapi.json", undefined, { key: null });
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  spec = res.body;
});
afterAll(() => t.close());

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** "METHOD /path/:param" of every route the server answers, read from Fastify's route tree. */
function registeredRoutes(): Set<string> {
  const tree = t.server.app.printRoutes({ commonPrefix: false });
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^((?:[│ ] {3})*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    stack.length = m[1]!.length / 4;
    stack.push(m[2]!);
    for (const method of (m[3] ?? "").split(",").map((s) => s.trim())) {
      if (method && method !== "HEAD") out.add(`${method} ${stack.join("")}`);
    }
  }
  return out;
}

function operations(): [string, string, Json][] {
  const paths = spec.paths as Record<string, Json>;
  return Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([k]) => METHODS.includes(k))
      .map(([method, op]) => [method, path, op as Json] as [string, string, Json]),
  );
}

describe("/openapi.json", () => {
  it("is served without a key", async () => {
    expect(spec).toBeTypeOf("object");
  });

  it("is an OpenAPI 3.1 document", () => {
    expect(spec.openapi).toMatch(/^3\.1\.\d+$/);
    const allowedTop = [
      "openapi",
      "info",
      "jsonSchemaDialect",
      "servers",
      "paths",
      "webhooks",
      "components",
      "security",
      "tags",
      "externalDocs",
    ];
    for (const k of Object.keys(spec)) expect(allowedTop, k).toContain(k);
    const info = spec.info as Json;
    expect(info.title).toEqual(expect.any(String));
    expect(info.version).toEqual(expect.any(String));
    const schemes = ((spec.components as Json | undefined)?.securitySchemes ?? {}) as Record<string, Json>;
    for (const requirement of (spec.security ?? []) as Json[]) {
      for (const name of Object.keys(requirement)) expect(Object.keys(schemes), name).toContain(name);
    }
    expect(schemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });

    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(spec.paths as Record<string, Json>)) {
      expect(path.startsWith("/"), path).toBe(true);
      for (const k of Object.keys(item)) {
        expect(
          [...METHODS, "summary", "description", "servers", "parameters", "$ref"],
          `${path} ${k}`,
        ).toContain(k);
      }
    }
    for (const [method, path, op] of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      if (op.operationId !== undefined) {
        expect(operationIds.has(op.operationId as string), where).toBe(false);
        operationIds.add(op.operationId as string);
      }
      const responses = op.responses as Record<string, Json>;
      expect(Object.keys(responses).length, where).toBeGreaterThan(0);
      for (const [code, response] of Object.entries(responses)) {
        expect(code, where).toMatch(/^(default|[1-5](\d\d|XX))$/);
        expect(response.description, where).toEqual(expect.any(String));
      }
      const params = (op.parameters ?? []) as Json[];
      for (const p of params) {
        expect(p.name, where).toEqual(expect.any(String));
        expect(["query", "header", "path", "cookie"], where).toContain(p.in);
        expect(p.schema ?? p.content, where).toBeDefined();
        if (p.in === "path") expect(p.required, `${where} ${p.name}`).toBe(true);
      }
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = params
        .filter((p) => p.in === "path")
        .map((p) => p.name as string)
        .sort();
      expect(declared, where).toEqual(templated);
      if (op.requestBody !== undefined) {
        const content = (op.requestBody as Json).content as Record<string, Json>;
        expect(Object.keys(content), where).toEqual(["application/json"]);
        expect(content["application/json"]!.schema, where).toBeTypeOf("object");
      }
    }
  });

  it("holds only JSON Schema 2020-12 schemas, and every $ref resolves", () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    const refs: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (Array.isArray(node)) {
        for (const [i, n] of node.entries()) walk(n, `${path}/${i}`);
        return;
      }
      if (node === null || typeof node !== "object") return;
      const obj = node as Json;
      expect(obj, `${path} uses the OpenAPI 3.0 "nullable"`).not.toHaveProperty("nullable");
      if (typeof obj.$ref === "string") refs.push(obj.$ref);
      if (obj.schema && typeof obj.schema === "object" && !path.endsWith("/properties")) {
        expect(() => ajv.compile(obj.schema as Json), `${path}/schema`).not.toThrow();
      }
      for (const [k, v] of Object.entries(obj)) walk(v, `${path}/${k}`);
    };
    walk(spec, "#");
    for (const ref of refs) {
      expect(ref.startsWith("#/"), ref).toBe(true);
      let at: unknown = spec;
      for (const part of ref.slice(2).split("/"))
        at = (at as Json | undefined)?.[part.replaceAll("~1", "/").replaceAll("~0", "~")];
      expect(at, ref).toBeDefined();
    }
  });

  it("lists every /v1 route the server answers, and no other", () => {
    const routes = [...registeredRoutes()].filter((r) => r.split(" ")[1]!.startsWith("/v1/"));
    // The route tree was read: the routes of API.md's foundation are all there.
    for (const known of [
      "POST /v1/events",
      "PUT /v1/customers/:id",
      "GET /v1/customers",
      "POST /v1/customers/:id/keys",
      "DELETE /v1/customers/:id/keys/:key_id",
      "PUT /v1/plans/:id",
      "PUT /v1/meters/:id",
      "GET /v1/meters/:id/query",
      "POST /v1/api-keys",
      "GET /v1/api-keys",
      "DELETE /v1/api-keys/:id",
    ]) {
      expect(routes).toContain(known);
    }
    const documented = operations()
      .filter(([, path]) => path.startsWith("/v1/"))
      .map(([method, path]) => `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1")}`);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...routes].sort());
  });

  it("documents request bodies and query parameters from the routes' schemas", () => {
    const ops = new Map(operations().map(([m, p, op]) => [`${m.toUpperCase()} ${p}`, op]));
    const events = ops.get("POST /v1/events")!.requestBody as Json;
    const schema = (events.content as Record<string, Json>)["application/json"]!.schema as Json;
    expect(schema.required).toEqual(["events"]);
    expect((schema.properties as Record<string, Json>).events!.maxItems).toBe(1000);
    const query = ((ops.get("GET /v1/meters/{id}/query")?.parameters ?? []) as Json[])
      .filter((p) => p.in === "query")
      .map((p) => p.name);
    expect(query.sort()).toEqual(["customer", "from", "group_by", "to", "window"]);
  });

  it("equals the committed docs/openapi.json (run `npm run openapi` after changing routes)", async () => {
    const generated = await generateOpenApi();
    expect(JSON.parse(generated)).toEqual(spec);
    const committed = existsSync(OPENAPI_PATH) ? readFileSync(OPENAPI_PATH, "utf8") : "(missing)";
    if (committed !== generated) {
      throw new Error(
        `docs/openapi.json is out of date with the server's routes: run \`npm run openapi\` and commit the result`,
      );
    }
  });
});
