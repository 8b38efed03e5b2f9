/** The pure parts: overage arithmetic (exact, property-tested), the model-class map, the entitlement decision. */
import {
  decideEntitlement,
  formatCharge,
  ModelClassMap,
  overageLine,
  type PlanTerms,
  sumCharges,
  toModelClassSettings,
  toPlanTerms,
} from "@tollgate/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** Independent decimal multiplication on strings: an integer times a decimal, as a trimmed decimal. */
function times(units: bigint, price: string): string {
  const [whole, frac = ""] = price.split(".");
  const digits = (units * BigInt(whole + frac)).toString().padStart(frac.length + 1, "0");
  const intPart = digits.slice(0, digits.length - frac.length);
  const fracPart = frac.length ? digits.slice(digits.length - frac.length) : "";
  return `${intPart}${fracPart ? `.${fracPart}` : ""}`;
}
/** Compare decimal strings by value (trailing zeros do not matter). */
const norm = (d: string) => (d.includes(".") ? d.replace(/0+$/, "").replace(/\.$/, "") : d);

const priceArb = fc
  .tuple(
    fc.bigInt({ min: 0n, max: 10n ** 6n }),
    fc.integer({ min: 0, max: 12 }),
    fc.bigInt({ min: 0n, max: 10n ** 12n - 1n }),
  )
  .map(([whole, places, frac]) =>
    places === 0
      ? whole.toString()
      : `${whole}.${(frac % 10n ** BigInt(places)).toString().padStart(places, "0")}`,
  );

describe("overage arithmetic", () => {
  it("units past the included amount times the unit price, exactly (any size, any price with up to 12 decimals)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 80n }),
        fc.bigInt({ min: 0n, max: 2n ** 80n }),
        priceArb,
        (included, used, price) => {
          const terms = toPlanTerms(
            { overage: [{ meter: "m", included: 0, unit_price: price }] },
            () => "units",
          );
          const term = { ...terms.overage[0]!, included: included.toString() };
          const line = overageLine(term, used);
          const over = used > included ? used - included : 0n;
          expect(line.overageUnits).toBe(over);
          expect(norm(formatCharge(line.charge, line.chargeScale))).toBe(norm(times(over, price)));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("a cost meter's units are pico-USD: the charge is USD of overage times the price, to 24 decimals", () => {
    const terms = toPlanTerms(
      { overage: [{ meter: "spend", included: "5.00", unit_price: "1.2" }] },
      () => "cost",
    );
    expect(terms.overage[0]).toEqual({
      meter: "spend",
      included: "5000000000000",
      unitPrice: "1.2",
      cost: true,
    });
    // $7.000000000001 used: $2.000000000001 over × 1.2 = $2.4000000000012
    const line = overageLine(terms.overage[0]!, 7_000_000_000_001n);
    expect(formatCharge(line.charge, line.chargeScale)).toBe("2.4000000000012");
    const total = sumCharges([line, { charge: 1n, chargeScale: 12 }]);
    expect(formatCharge(total.charge, total.chargeScale)).toBe("2.4000000000022");
  });

  it("refuses what cannot be exact or does not exist", () => {
    const kinds = (m: string) =>
      (({ tokens: "units", spend: "cost", peak: "unsupported" }) as const)[m as "tokens"] as
        | "units"
        | "cost"
        | "unsupported"
        | undefined;
    const bad = [
      { meter: "tokens", included: 1, unit_price: "0.0000000000001" },
      { meter: "tokens", included: "5", unit_price: "1" },
      { meter: "spend", included: 5, unit_price: "1" },
      { meter: "peak", included: 1, unit_price: "1" },
      { meter: "nope", included: 1, unit_price: "1" },
      { meter: "tokens", included: -1, unit_price: "1" },
      { meter: "tokens", included: 1, unit_price: "1e3" },
    ];
    for (const t of bad) {
      expect(() => toPlanTerms({ overage: [t] }, kinds), JSON.stringify(t)).toThrow();
    }
  });
});

describe("model-class map", () => {
  it("exact names beat patterns, the longest pattern wins, case and spaces do not matter", () => {
    const map = new ModelClassMap(
      toModelClassSettings({
        models: {
          "gpt-4o": "medium",
          "gpt-4o*": "medium",
          "gpt-4o-mini*": "small",
          "GPT-4o-mini-audio": "audio",
        },
        default_class: null,
      }),
    );
    expect(map.classOf("gpt-4o")).toBe("medium");
    expect(map.classOf(" GPT-4O-2024-08-06 ")).toBe("medium");
    expect(map.classOf("gpt-4o-mini-2024-07-18")).toBe("small");
    expect(map.classOf("gpt-4o-mini-audio")).toBe("audio");
    expect(map.classOf("claude")).toBeNull();
    expect(map.classes()).toEqual(["audio", "medium", "small"]);
    const withDefault = new ModelClassMap(toModelClassSettings({ models: {}, default_class: "premium" }));
    expect(withDefault.classOf("anything")).toBe("premium");
    expect(withDefault.empty).toBe(false);
    expect(new ModelClassMap(toModelClassSettings({ models: {} })).empty).toBe(true);
  });

  it("refuses a `*` anywhere but at the end, and one name mapped twice to different classes", () => {
    expect(() => toModelClassSettings({ models: { "gpt*4o": "x" } })).toThrow(/only end/);
    expect(() => toModelClassSettings({ models: { "GPT-4o": "a", "gpt-4o": "b" } })).toThrow(/twice/);
    expect(() => toModelClassSettings({ models: { "*": "a" } })).toThrow();
  });
});

describe("the entitlement decision", () => {
  const terms: PlanTerms = {
    features: { agent_keys: true, exports: false },
    modelClasses: ["small"],
    overage: [],
  };
  it("features first, then the model's class; no plan, no class, or no class list: allowed", () => {
    expect(decideEntitlement(terms, ["agent_keys"], "m", "small")).toEqual({ allowed: true });
    expect(decideEntitlement(terms, ["agent_keys", "exports"], "m", "medium")).toEqual({
      allowed: false,
      reason: "feature",
      feature: "exports",
    });
    expect(decideEntitlement(terms, [], "gpt-4o", "medium")).toEqual({
      allowed: false,
      reason: "model_class",
      modelClass: "medium",
      model: "gpt-4o",
    });
    expect(decideEntitlement(terms, ["unknown"], undefined, null)).toMatchObject({ allowed: false });
    expect(decideEntitlement(null, ["anything"], "gpt-4o", "premium")).toEqual({ allowed: true });
    expect(decideEntitlement(terms, [], "local-llama", null)).toEqual({ allowed: true });
    expect(decideEntitlement({ ...terms, modelClasses: null }, [], "o1", "premium")).toEqual({
      allowed: true,
    });
  });
});
