import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  balanceLowAlert,
  limitAlert,
  rollingAlertWindow,
  usageSummaryAlert,
  webhookPayload,
} from "../src/alerts/payload.js";
import { toQuota } from "../src/quota/definitions.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const limit = toQuota(
  "monthly",
  { kind: "plan", plan: "pro" },
  { meter: "tokens", amount: 1000, period: "month" },
  0,
);
const base = {
  workspaceId: "default",
  limit,
  subject: "acme",
  group: {},
  window: { start: Date.UTC(2026, 10, 1), end: Date.UTC(2026, 11, 1) },
  level: { type: "limit.warning" as const, threshold: 80 },
  used: 812,
  trigger: "usage" as const,
  at: Date.UTC(2026, 10, 23, 10, 0, 0, 250),
};

describe("alert ids and payloads", () => {
  it("the same limit, subject, group, window and level give the same id, whatever the usage or time", () => {
    const a = limitAlert(sha256, base);
    const b = limitAlert(sha256, { ...base, used: 990, at: base.at + 5_000, trigger: "check" });
    expect(a.id).toMatch(/^alt_[0-9a-f]{32}$/);
    expect(b.id).toBe(a.id);
  });

  it("any other identity gives another id", () => {
    const a = limitAlert(sha256, base).id;
    const variants = [
      { workspaceId: "other" },
      { subject: "bob" },
      { group: { model: "gpt-4o" } },
      { window: { start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) } },
      { level: { type: "limit.critical" as const, threshold: 95 } },
      { level: { type: "limit.warning" as const, threshold: 50 } },
      {
        limit: toQuota(
          "monthly",
          { kind: "customer", customer: "acme" },
          { meter: "tokens", amount: 1000, period: "month" },
          0,
        ),
      },
      {
        limit: toQuota(
          "other",
          { kind: "plan", plan: "pro" },
          { meter: "tokens", amount: 1000, period: "month" },
          0,
        ),
      },
    ];
    const ids = variants.map((v) => limitAlert(sha256, { ...base, ...v }).id);
    expect(new Set([a, ...ids]).size).toBe(ids.length + 1);
  });

  it("group key order does not matter", () => {
    const x = limitAlert(sha256, { ...base, group: { model: "a", feature: "b" } }).id;
    const y = limitAlert(sha256, { ...base, group: { feature: "b", model: "a" } }).id;
    expect(x).toBe(y);
  });

  it("the payload is the documented shape", () => {
    const alert = limitAlert(sha256, base);
    expect(JSON.parse(webhookPayload(alert))).toEqual({
      id: alert.id,
      type: "limit.warning",
      timestamp: "2026-11-23T10:00:00.250Z",
      data: {
        limit: {
          id: "monthly",
          plan: "pro",
          meter: "tokens",
          amount: 1000,
          period: "month",
          enforcement: "hard",
        },
        customer: "acme",
        group: {},
        threshold: 80,
        used: 812,
        percent_used: 81.2,
        window_start: "2026-11-01T00:00:00Z",
        window_end: "2026-12-01T00:00:00Z",
        trigger: "usage",
      },
    });
    const ws = limitAlert(sha256, { ...base, subject: "*" });
    expect(ws.customer).toBeNull();
    expect(ws.data.customer).toBeNull();
  });

  it("rolling windows dedupe per span of the period's length", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 366 * 86_400 }), fc.integer({ min: 0, max: 4e12 }), (s, at) => {
        const w = rollingAlertWindow(s, at);
        expect(w.start).toBeLessThanOrEqual(at);
        expect(at).toBeLessThan(w.end!);
        expect(w.end! - w.start).toBe(s * 1000);
        expect(rollingAlertWindow(s, w.start)).toEqual(w);
      }),
    );
  });

  it("balance.low and usage.summary ids", () => {
    const low = (episode?: string, at = base.at) =>
      balanceLowAlert(sha256, {
        workspaceId: "default",
        customer: "acme",
        available: 5,
        level: 10,
        episode,
        at,
      }).id;
    expect(low("g1")).toBe(low("g1", base.at + 86_400_000));
    expect(low("g1")).not.toBe(low("g2"));
    expect(low()).toBe(low(undefined, base.at + 3_600_000));
    expect(low()).not.toBe(low(undefined, base.at + 86_400_000));
    const summary = (customer: string, period: "day" | "week") =>
      usageSummaryAlert(sha256, {
        workspaceId: "default",
        customer,
        period,
        window: { start: 0, end: 86_400_000 },
        events: 1,
        values: {},
        meters: {},
        at: 0,
      }).id;
    expect(new Set([summary("a", "day"), summary("a", "week"), summary("b", "day")]).size).toBe(3);
  });
});
