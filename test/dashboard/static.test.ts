import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RouteDeps } from "../../packages/server/src/routes/common.js";
import { DASHBOARD_DIR, dashboardRoutes, resolveAsset } from "../../packages/server/src/routes/dashboard.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** The server's static route for the dashboard (packages/server/src/routes/dashboard.ts). */
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

describe("GET / and /dashboard/*", () => {
  it("serves the page without a key, with a strict CSP, and its assets with their types", async () => {
    const page = await fetch(`${t.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="dashboard/app.js">');
    expect(html).not.toMatch(/<script(?![^>]*src=)/); // no inline script: the CSP would refuse it

    for (const [path, type] of [
      ["app.js", "text/javascript; charset=utf-8"],
      ["views/usage.js", "text/javascript; charset=utf-8"],
      ["style.css", "text/css; charset=utf-8"],
      ["favicon.svg", "image/svg+xml"],
    ]) {
      const res = await fetch(`${t.url}/dashboard/${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toBe(type);
      expect(await res.text()).toBe(readFileSync(join(DASHBOARD_DIR, path!), "utf8"));
    }
  });

  it("every module the page imports exists (no build step: the files are the app)", async () => {
    const seen = new Set<string>();
    const visit = async (path: string) => {
      if (seen.has(path)) return;
      seen.add(path);
      const res = await fetch(`${t.url}/dashboard/${path}`);
      expect(res.status, path).toBe(200);
      const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
      for (const m of (await res.text()).matchAll(/^import[^"]*"(\.{1,2}\/[^"]+)"/gm)) {
        await visit(new URL(m[1]!, `http://x/${dir}`).pathname.slice(1));
      }
    };
    await visit("app.js");
    expect(seen.size).toBeGreaterThanOrEqual(8);
    const files = readdirSync(join(DASHBOARD_DIR, "views")).filter((n) => n.endsWith(".js"));
    for (const f of files) expect(seen, f).toContain(`views/${f}`);
  });

  it("revalidates with ETag: an unchanged file is a 304", async () => {
    const first = await fetch(`${t.url}/dashboard/app.js`);
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers.get("cache-control")).toBe("no-cache");
    const again = await fetch(`${t.url}/dashboard/app.js`, { headers: { "if-none-match": etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  it("answers 404 in the API's error shape for anything outside the folder or unknown", async () => {
    for (const path of [
      "/dashboard/nope.js",
      "/dashboard/../package.json",
      "/dashboard/..%2f..%2fpackage.json",
      "/dashboard/%2e%2e/%2e%2e/server/package.json",
      "/dashboard/views/..%2F..%2Fpackage.json",
      "/dashboard/.hidden.js",
      "/dashboard/app.ts",
      "/dashboard/%00app.js",
      "/dashboard/..%5c..%5cpackage.json",
      "/dashboard/",
      `/dashboard/${"a/".repeat(200)}x.js`,
    ]) {
      const res = await t.api("GET", path, undefined, { key: null });
      expect(res.status, path).toBe(404);
      expect(res.body?.error?.code, path).toBe("NOT_FOUND");
    }
  });

  it("keeps the API authenticated and leaves the dashboard out of the OpenAPI document", async () => {
    expect((await t.api("GET", "/v1/customers", undefined, { key: null })).status).toBe(401);
    const doc = (await t.api("GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths).filter((p) => p === "/" || p.startsWith("/dashboard"))).toEqual([]);
  });
});

describe("resolveAsset", () => {
  it("resolves plain relative paths under the root and nothing else, symlinks included", async () => {
    const root = mkdtempSync(join(tmpdir(), "tollgate-assets-"));
    const outside = mkdtempSync(join(tmpdir(), "tollgate-outside-"));
    try {
      writeFileSync(join(root, "ok.js"), "1");
      writeFileSync(join(outside, "secret.js"), "2");
      symlinkSync(join(outside, "secret.js"), join(root, "link.js"));
      expect(await resolveAsset(root, "ok.js")).toBe(join(root, "ok.js"));
      for (const bad of [
        "link.js",
        "../ok.js",
        "/etc/passwd.js",
        "a\\b.js",
        "ok.exe",
        "",
        "./ok.js",
        "missing.js",
      ])
        expect(await resolveAsset(root, bad), bad).toBeNull();
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe("dashboardRoutes", () => {
  it("serves a file again once it changes on disk, with a new ETag", async () => {
    const root = mkdtempSync(join(tmpdir(), "tollgate-assets-"));
    const app = Fastify();
    try {
      dashboardRoutes(root)(app, {} as RouteDeps);
      writeFileSync(join(root, "a.js"), "1");
      const first = await app.inject({ url: "/dashboard/a.js" });
      expect(first.body).toBe("1");
      writeFileSync(join(root, "a.js"), "22");
      const second = await app.inject({ url: "/dashboard/a.js" });
      expect(second.body).toBe("22");
      expect(second.headers.etag).not.toBe(first.headers.etag);
    } finally {
      await app.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("format.js (the page's exact arithmetic)", () => {
  it("adds counts and USD strings exactly, past 2^53 and to the pico-dollar", async () => {
    const f = await import(pathToFileURL(join(DASHBOARD_DIR, "format.js")).href);
    const t = f.sumRows([
      { tokens_total: 9007199254740991, requests: 1, cost: "0.000000000001" },
      { tokens_total: "9007199254740993", requests: 2, cost: "1.999999999999" },
      { tokens_total: 0, requests: 0, cost: "0.100000" },
    ]);
    expect(t.tokensTotal).toBe(18014398509481984n);
    expect(t.requests).toBe(3n);
    expect(f.usdString(t.cost)).toBe("2.100000");
    expect(f.usdString(f.parseUsd("-0.5"))).toBe("-0.500000");
    expect(f.formatMoney(f.parseUsd("1234.567"))).toBe("$1,234.57");
    expect(f.formatMoney(f.parseUsd("0.004"))).toBe("<$0.01");
    expect(f.formatCount("18014398509481984")).toBe("18,014,398,509,481,984");
    expect(f.formatPercent(12.345, { sign: true })).toBe("+12.3 %");
    expect(f.formatPercent(null)).toBe("—");
    expect(f.dayToInstant("2026-02-28", true)).toBe("2026-03-01T00:00:00Z");
    expect(f.dayToInstant("2026-13-01")).toBeUndefined();
    expect(() => f.parseUsd("1e3")).toThrow();
  });
});
