/** Plans and entitlements as code: tollgate.yaml through `tollgate apply` (applyConfig over HTTP). */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { applyConfig, httpSender, loadConfig } from "../../packages/cli/src/config.js";
import { closeAll, customerLimit, DAY, freshServer, iso, T0, TYPE } from "../limits/helpers.js";

afterAll(closeAll);

const YAML = `
model_classes:
  models: { gpt-4o-mini: small, gpt-4o: medium, "o1*": premium }
  default_class: null
meters:
  spend: { event_type: llm.completion, aggregation: sum, value: cost }
plans:
  free:
    name: Free
    features: { agent_keys: false }
    model_classes: [small]
    limits:
      - { id: monthly-tokens, meter: tokens, amount: 100000, period: month }
  pro:
    name: Pro
    features: { agent_keys: true }
    model_classes: [small, medium]
    overage:
      - { meter: tokens, included: 2000000, unit_price: "0.000002" }
      - { meter: spend, included: "5.00", unit_price: "1.2" }
    limits:
      - { id: monthly-tokens, meter: tokens, amount: 3000000, period: month }
customers:
  hobbyist: { plan: free }
  acme: { plan: pro, timezone: America/New_York, billing_anchor: "2026-01-31T20:00:00Z" }
limits:
  - { id: monthly-tokens, customer: hobbyist, meter: tokens, amount: 500000, period: month, expires_at: "${iso(T0 + 7 * DAY)}" }
`;

describe("tollgate.yaml: model_classes, plan features, classes and overage, anchors, raises", () => {
  it("applies, takes effect, and applying again creates nothing", async () => {
    const { t, clock } = await freshServer();
    const dir = mkdtempSync(join(tmpdir(), "tollgate-plans-"));
    try {
      const path = join(dir, "tollgate.yaml");
      writeFileSync(path, YAML);
      const config = loadConfig(path);
      const send = httpSender(t.url, t.adminKey);
      const first = await applyConfig(config, send);
      expect(first.created).toEqual(
        expect.arrayContaining(["plans/free", "plans/pro", "customers/acme", "limits/monthly-tokens"]),
      );
      expect(first.updated).toContain("model_classes");

      const ent = await t.api("GET", "/v1/customers/acme/entitlements");
      expect(ent.body).toMatchObject({
        plan: "pro",
        features: { agent_keys: true },
        model_classes: ["medium", "small"],
        model_class_access: { small: true, medium: true, premium: false },
        overage: [
          { meter: "tokens", included: 2_000_000, unit_price: "0.000002" },
          { meter: "spend", included: "5.000000", unit_price: "1.2" },
        ],
      });
      const check = (customer: string, model: string) =>
        t.api("POST", "/v1/check", {
          event: { type: TYPE, customer, values: { tokens_in: 10 }, dimensions: { model } },
        });
      expect((await check("hobbyist", "gpt-4o")).status).toBe(403);
      expect((await check("acme", "gpt-4o")).status).toBe(200);
      expect((await customerLimit(t, "acme", "monthly-tokens")).reset_at).toBe("2026-11-30T20:00:00Z");
      expect((await customerLimit(t, "hobbyist", "monthly-tokens")).limit).toBe(500_000);

      const second = await applyConfig(config, send);
      expect(second.created).toEqual([]);
      const again = await t.api("GET", "/v1/plans/pro");
      expect(again.body.overage).toHaveLength(2);

      // The raise from the file ends by itself.
      clock.set(T0 + 7 * DAY);
      expect((await customerLimit(t, "hobbyist", "monthly-tokens")).limit).toBe(100_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a bad section is reported with its name", async () => {
    const { t } = await freshServer();
    const send = httpSender(t.url, t.adminKey);
    await expect(applyConfig({ model_classes: { models: { "a*b": "x" } } }, send)).rejects.toThrow(
      /model_classes: 400/,
    );
    await expect(
      applyConfig(
        { plans: { p: { name: "P", overage: [{ meter: "nope", included: 1, unit_price: "1" }] } } },
        send,
      ),
    ).rejects.toThrow(/plans\/p: 400 meter nope does not exist/);
  });
});
