import { type CheckResult, formatInstant, type LimitOutcome } from "@tollgate/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkAnswerJson } from "../src/routes/check.js";

// POST /v1/check's answer as it was built before checkAnswerJson: an object per limit, field by
// field in this order, then JSON.stringify (Fastify's default serializer for a route without a
// response schema).
const at = (ms: number | null) => (ms === null ? null : formatInstant(ms));
const seconds = (ms: number | null) => (ms === null ? undefined : Math.ceil(ms / 1000));

function referenceOutcome(o: LimitOutcome): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: o.id,
    kind: o.kind,
    allowed: o.allowed,
    exceeded: o.exceeded,
    enforcement: o.enforcement,
    limit: o.limit,
    remaining: o.remaining,
  };
  if (o.used !== undefined) body.used = o.used;
  if (o.reserved !== undefined) body.reserved = o.reserved;
  body.reset_at = at(o.resetAt);
  if (o.retryAfterMs !== null) body.retry_after = seconds(o.retryAfterMs);
  if (o.group) body.group = o.group;
  return body;
}

function referenceAnswer(result: CheckResult): string {
  const body: Record<string, unknown> = { allowed: result.allowed };
  if (result.code) body.code = result.code;
  body.limits = result.limits.map(referenceOutcome);
  if ((result as { degraded?: boolean }).degraded) body.degraded = true;
  if (result.reservation)
    body.reservation = {
      id: result.reservation.id,
      expires_at: formatInstant(result.reservation.expiresAt),
    };
  return JSON.stringify(body);
}

// Strings with what JSON must escape: quotes, backslashes, control characters, lone and paired
// surrogates, and non-ASCII text.
const text = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom("a", '"', "\\", "\n", "\u0000", "\u001f", "\u007f", "\ud800", "\udc00", "é", "😀"),
    maxLength: 12,
  }),
  fc.constantFrom("rpm-per-key", "monthly-tokens", "tpm-per-customer"),
);
const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    1e12,
    999_999_999_900,
    Number.MAX_SAFE_INTEGER,
    1e21,
    1.5e-7,
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ),
);
// Instants formatInstant takes: whole and fractional milliseconds, days before 1970 and after 9999.
const instant = fc.oneof(
  fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }),
  fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
  fc.double({ min: 0, max: 4_000_000_000_000, noNaN: true }),
);
const outcome: fc.Arbitrary<LimitOutcome> = fc.record(
  {
    id: text,
    kind: fc.constantFrom("quota", "rate", "concurrency", "balance"),
    enforcement: fc.constantFrom("hard", "soft", "shadow"),
    allowed: fc.boolean(),
    exceeded: fc.boolean(),
    limit: number,
    remaining: number,
    used: number,
    reserved: number,
    resetAt: fc.option(instant),
    retryAfterMs: fc.option(
      fc.oneof(fc.integer({ min: 0, max: 10_000_000 }), fc.double({ min: 0, max: 1e9, noNaN: true })),
    ),
    group: fc.dictionary(text, fc.option(text), { maxKeys: 3 }),
  },
  {
    requiredKeys: [
      "id",
      "kind",
      "enforcement",
      "allowed",
      "exceeded",
      "limit",
      "remaining",
      "resetAt",
      "retryAfterMs",
    ],
  },
) as fc.Arbitrary<LimitOutcome>;
const result = fc
  .record(
    {
      allowed: fc.boolean(),
      code: fc.constantFrom("LIMIT_EXCEEDED", "FEATURE_NOT_ENABLED", "INSUFFICIENT_BALANCE", ""),
      limits: fc.array(outcome, { maxLength: 5 }),
      degraded: fc.boolean(),
      reservation: fc.record({ id: text, expiresAt: instant }),
    },
    { requiredKeys: ["allowed", "limits"] },
  )
  .map((r) => r as unknown as CheckResult);

describe("POST /v1/check's answer", () => {
  it("is the JSON.stringify text of the answer object, character for character", () => {
    fc.assert(
      fc.property(result, (r) => {
        expect(checkAnswerJson(r)).toBe(referenceAnswer(r));
      }),
      { numRuns: 3000 },
    );
  });

  it("stays the reference text check after check when limits of the same id change", () => {
    // A few ids and reset instants only, so that the leading fields and reset_at written for an id
    // are reused by later answers and must be rewritten whenever kind, enforcement, limit, allowed,
    // exceeded or the reset instant differ.
    const sameIds = outcome.chain((o) =>
      fc
        .record({
          id: fc.constantFrom("rpm-per-key", "monthly-tokens", 'q"uote'),
          limit: fc.constantFrom(6000, 1e12, -0, 0, Number.NaN),
          resetAt: fc.constantFrom(null, Date.UTC(2026, 11, 1), Date.UTC(2026, 10, 23, 19, 9, 59, 999), 0.5),
        })
        .map(({ id, limit, resetAt }) => ({ ...o, id, limit, resetAt })),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(sameIds, { maxLength: 4 }), { minLength: 2, maxLength: 12 }),
        (answers) => {
          for (const limits of answers) {
            const r = { allowed: true, limits } as CheckResult;
            expect(checkAnswerJson(r)).toBe(referenceAnswer(r));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("keeps the answer of a typical check (3 limits) as API.md shows it", () => {
    const r: CheckResult = {
      allowed: true,
      limits: [
        {
          id: "rpm-per-key",
          kind: "rate",
          enforcement: "hard",
          allowed: true,
          exceeded: false,
          limit: 6000,
          remaining: 5998,
          resetAt: Date.UTC(2026, 10, 23, 19, 9, 59, 999),
          retryAfterMs: null,
        },
        {
          id: "monthly-tokens",
          kind: "quota",
          enforcement: "hard",
          allowed: true,
          exceeded: false,
          limit: 1e12,
          remaining: 999_999_999_900,
          used: 0,
          reserved: 0,
          resetAt: Date.UTC(2026, 11, 1),
          retryAfterMs: null,
        },
      ],
    };
    expect(checkAnswerJson(r)).toBe(
      '{"allowed":true,"limits":[{"id":"rpm-per-key","kind":"rate","allowed":true,"exceeded":false,"enforcement":"hard","limit":6000,"remaining":5998,"reset_at":"2026-11-23T19:09:59.999Z"},' +
        '{"id":"monthly-tokens","kind":"quota","allowed":true,"exceeded":false,"enforcement":"hard","limit":1000000000000,"remaining":999999999900,"used":0,"reserved":0,"reset_at":"2026-12-01T00:00:00Z"}]}',
    );
  });
});
