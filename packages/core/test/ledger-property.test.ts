/**
 * Property tests of the ledger: random sequences of credits (with and without expiry and priority),
 * debits, holds, commits (actual below and above the hold), releases, minimum changes, retries and
 * clock moves (a fake clock: plain numbers), checked three ways after every step:
 *
 * 1. the identities, from what the ledger reports as applied: balance = Σcredits − Σdebits −
 *    Σexpired, available = balance − held, admitted debits/holds never leave available below the
 *    minimum, a retried entry applies once, a failed entry changes nothing;
 * 2. against a naive reference model written from README.md (bigint throughout, everything
 *    recomputed from scratch, expiry evaluated lazily), result by result and view by view;
 * 3. replaying the log (applied entries only, or every attempt) derives the same ledger.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  deriveLedger,
  LEDGER_BEGINNING,
  Ledger,
  type LedgerEntry,
  type LedgerResult,
  type LedgerView,
  replayLedger,
} from "../src/ledger/index.js";

const HOUR = 3_600_000;
const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MAX = Number.MAX_SAFE_INTEGER;

// ---- the reference model ----------------------------------------------------------------------------

interface MGrant {
  id: string;
  seq: number;
  amount: bigint;
  repaid: bigint;
  spent: bigint;
  expiresAt: number | null;
  priority: number;
}

interface MHold {
  amount: bigint;
  expiresAt: number;
  status: "open" | "committed" | "released";
}

/** What the model expects of a result; compared field by field with the ledger's. */
type Expected =
  | { ok: false; code: string }
  | {
      ok: true;
      kind: LedgerEntry["kind"];
      replayed: boolean;
      at: number;
      balance: bigint;
      available: bigint;
      held: bigint;
      allocations?: { grantId: string; amount: number }[];
      overdrawn?: number;
      released?: number;
      repaid?: number;
      holdExpired?: boolean;
      amount?: number;
    };

const expired = (g: MGrant, t: number) => g.expiresAt !== null && g.expiresAt <= t;

/** README.md's rules, implemented the slow and obvious way. */
class Model {
  clock = LEDGER_BEGINNING;
  debt = 0n;
  seq = 0;
  grants: MGrant[] = [];
  holds = new Map<string, MHold>();
  keys = new Map<string, { print: string; result: Expected & { ok: true } }>();
  /** Per rule: [creditsPerUnit, unit, fraction carried]. */
  carries = new Map<string, [number, number, bigint]>();
  constructor(public min: bigint) {}

  remaining(g: MGrant, t: number): bigint {
    return expired(g, t) ? 0n : g.amount - g.repaid - g.spent;
  }
  expiredAmount(g: MGrant, t: number): bigint {
    return expired(g, t) ? g.amount - g.repaid - g.spent : 0n;
  }
  balance(t: number): bigint {
    return this.grants.reduce((s, g) => s + this.remaining(g, t), 0n) - this.debt;
  }
  held(t: number): bigint {
    let held = 0n;
    for (const h of this.holds.values()) if (h.status === "open" && h.expiresAt > t) held += h.amount;
    return held;
  }
  available(t: number): bigint {
    return this.balance(t) - this.held(t);
  }

  burn(amount: number, t: number) {
    const order = this.grants
      .filter((g) => this.remaining(g, t) > 0n)
      .sort(
        (a, b) =>
          (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.priority - b.priority || a.seq - b.seq,
      );
    let rest = BigInt(amount);
    const allocations: { grantId: string; amount: number }[] = [];
    for (const g of order) {
      if (rest === 0n) break;
      const r = this.remaining(g, t);
      const take = r < rest ? r : rest;
      g.spent += take;
      rest -= take;
      allocations.push({ grantId: g.id, amount: Number(take) });
    }
    this.debt += rest;
    return { allocations, overdrawn: Number(rest) };
  }

  apply(e: LedgerEntry): Expected {
    const t = Math.max(this.clock, e.at);
    const fail = (code: string): Expected => ({ ok: false, code });
    const done = (extra: Partial<Expected & { ok: true }>): Expected & { ok: true } => {
      this.clock = t;
      return {
        ok: true,
        kind: e.kind,
        replayed: false,
        at: t,
        balance: this.balance(t),
        available: this.available(t),
        held: this.held(t),
        ...extra,
      };
    };
    if (e.kind === "minimum_balance") {
      this.min = BigInt(e.minimumBalance);
      return done({});
    }
    const print =
      e.kind === "credit"
        ? `c/${e.amount}/${e.expiresAt ?? "-"}/${e.priority ?? 50}/${e.grantId ?? e.idempotencyKey}`
        : e.kind === "debit"
          ? `d/${e.amount}`
          : e.kind === "usage"
            ? `u/${e.rule}/${e.units}/${e.creditsPerUnit}/${e.unit}`
            : e.kind === "hold"
              ? `h/${e.holdId}/${e.amount}`
              : e.kind === "commit"
                ? `m/${e.holdId}/${e.actualAmount}`
                : `r/${e.holdId}`;
    const prior = this.keys.get(e.idempotencyKey);
    if (prior) return prior.print === print ? { ...prior.result, replayed: true } : fail("CONFLICT");
    const admit = (amount: number) => this.available(t) - BigInt(amount) >= this.min;
    let result: Expected & { ok: true };
    switch (e.kind) {
      case "credit": {
        const expiresAt = e.expiresAt ?? null;
        const id = e.grantId ?? e.idempotencyKey;
        if (expiresAt !== null && expiresAt <= t) return fail("INVALID_REQUEST");
        if (this.grants.some((g) => g.id === id)) return fail("CONFLICT");
        const amount = BigInt(e.amount);
        const repaid = amount < this.debt ? amount : this.debt;
        this.debt -= repaid;
        const priority = e.priority ?? 50;
        this.grants.push({ id, seq: this.seq++, amount, repaid, spent: 0n, expiresAt, priority });
        result = done({ repaid: Number(repaid) });
        break;
      }
      case "debit": {
        if (!admit(e.amount)) return fail("INSUFFICIENT_BALANCE");
        result = done(this.burn(e.amount, t));
        break;
      }
      case "usage": {
        // Whole credits of everything the rule has charged so far, minus what it already debited.
        const c = this.carries.get(e.rule);
        const carried = c && c[0] === e.creditsPerUnit && c[1] === e.unit ? c[2] : 0n;
        const total = carried + BigInt(e.units) * BigInt(e.creditsPerUnit);
        const amount = Number(total / BigInt(e.unit));
        if (amount > MAX) return fail("INVALID_REQUEST");
        this.carries.set(e.rule, [e.creditsPerUnit, e.unit, total % BigInt(e.unit)]);
        result = done({ ...this.burn(amount, t), amount });
        break;
      }
      case "hold": {
        if (this.holds.has(e.holdId)) return fail("CONFLICT");
        if (e.expiresAt <= t) return fail("INVALID_REQUEST");
        if (!admit(e.amount)) return fail("INSUFFICIENT_BALANCE");
        this.holds.set(e.holdId, { amount: BigInt(e.amount), expiresAt: e.expiresAt, status: "open" });
        result = done({});
        break;
      }
      case "commit": {
        const h = this.holds.get(e.holdId);
        if (!h) return fail("NOT_FOUND");
        if (h.status !== "open") return fail("CONFLICT");
        const lapsed = h.expiresAt <= t;
        h.status = "committed";
        const burned = this.burn(e.actualAmount, t);
        result = done({ ...burned, released: lapsed ? 0 : Number(h.amount), holdExpired: lapsed });
        break;
      }
      case "release": {
        const h = this.holds.get(e.holdId);
        if (!h) return fail("NOT_FOUND");
        if (h.status === "committed") return fail("CONFLICT");
        const released = h.status === "open" && h.expiresAt > t ? Number(h.amount) : 0;
        h.status = "released";
        result = done({ released });
        break;
      }
    }
    this.keys.set(e.idempotencyKey, { print, result });
    return result;
  }
}

// ---- operations ----------------------------------------------------------------------------------------

type Op =
  | { type: "advance"; hours: number }
  | {
      type: "credit";
      amount: number;
      expiresInHours: number | null;
      priority: number | undefined;
      key: number | null;
      grant: number | null;
    }
  | { type: "debit"; amount: number; key: number | null }
  | { type: "usage"; rule: number; units: number; perUnit: number; unit: number; key: number | null }
  | { type: "hold"; hold: number; amount: number; ttlHours: number; key: number | null }
  | { type: "commit"; hold: number; actual: number; key: number | null }
  | { type: "release"; hold: number; key: number | null }
  | { type: "minimum"; value: number }
  | { type: "retry"; index: number; ttlHours: number };

interface Mode {
  /** Amount arbitrary for credits (≥ 1) and for debits/holds/commits (≥ 0). */
  amount: fc.Arbitrary<number>;
  /** Restricted mode: no expiring grants, no TTL ever passes, commits ≤ their hold, fixed minimum. */
  restricted: boolean;
  /** Chance (of 10) that an entry is stamped behind the clock. */
  lateWeight: number;
}

const key = fc.option(fc.integer({ min: 0, max: 12 }), { nil: null, freq: 2 });

function opArb(mode: Mode): fc.Arbitrary<Op> {
  const { amount, restricted } = mode;
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ type: fc.constant("advance" as const), hours: fc.integer({ min: 0, max: 30 }) }),
    fc.record({
      type: fc.constant("credit" as const),
      amount: amount.map((a) => Math.max(1, a)),
      expiresInHours: restricted
        ? fc.constant(null)
        : fc.option(fc.integer({ min: -1, max: 72 }), { nil: null, freq: 3 }),
      priority: fc.option(fc.constantFrom(0, 10, 50, 100), { nil: undefined }),
      key,
      grant: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null, freq: 8 }),
    }),
    fc.record({ type: fc.constant("debit" as const), amount, key }),
    fc.record({
      type: fc.constant("hold" as const),
      hold: fc.integer({ min: 0, max: 5 }),
      amount,
      ttlHours: restricted ? fc.constant(1_000_000) : fc.integer({ min: 0, max: 40 }),
      key,
    }),
    fc.record({
      type: fc.constant("commit" as const),
      hold: fc.integer({ min: 0, max: 5 }),
      actual: amount,
      key,
    }),
    fc.record({ type: fc.constant("release" as const), hold: fc.integer({ min: 0, max: 5 }), key }),
    fc.record({
      type: fc.constant("retry" as const),
      index: fc.nat(),
      ttlHours: fc.integer({ min: 1, max: 40 }),
    }),
  ];
  if (!restricted) {
    // Usage already happened: like a commit's overshoot it may take available below the minimum.
    ops.push(
      fc.record({
        type: fc.constant("usage" as const),
        rule: fc.integer({ min: 0, max: 2 }),
        units: amount,
        perUnit: fc.constantFrom(1, 3),
        unit: fc.constantFrom(1, 7, 1000),
        key,
      }),
    );
    ops.push(
      fc.record({ type: fc.constant("minimum" as const), value: fc.integer({ min: -3000, max: 500 }) }),
    );
  }
  return fc.oneof(...ops);
}

const smallAmount = fc.oneof(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 40 }));
/** Near 2^53: sums pass 2^53 within a few entries. */
const bigAmount = fc.oneof(
  fc.integer({ min: MAX - 1_000, max: MAX }),
  fc.integer({ min: 2 ** 52, max: MAX }),
  fc.integer({ min: 0, max: 1_000 }),
);

interface Run {
  ledger: Ledger;
  model: Model;
  attempts: LedgerEntry[];
  results: LedgerResult[];
  now: number;
}

/** Runs the ops against the ledger and the model, checking everything after every step. */
function run(ops: [Op, number][], mode: Mode, minimumBalance: number): Run {
  const ledger = new Ledger({ minimumBalance });
  const model = new Model(BigInt(minimumBalance));
  const attempts: LedgerEntry[] = [];
  const results: LedgerResult[] = [];
  const appliedOnce = new Map<string, number>();
  let credits = 0n;
  let debits = 0n;
  let now = T0;
  let fresh = 0;
  const k = (n: number | null) => (n === null ? `fresh-${fresh++}` : `k${n}`);

  for (const [op, lateHours] of ops) {
    if (op.type === "advance") {
      now += op.hours * HOUR;
      checkView(ledger, model, now, credits, debits);
      continue;
    }
    const at = now - (lateHours < mode.lateWeight ? (lateHours + 1) * HOUR : 0);
    let entry: LedgerEntry;
    switch (op.type) {
      case "credit":
        entry = {
          kind: "credit",
          idempotencyKey: k(op.key),
          at,
          amount: op.amount,
          ...(op.expiresInHours === null ? {} : { expiresAt: now + op.expiresInHours * HOUR }),
          ...(op.priority === undefined ? {} : { priority: op.priority }),
          ...(op.grant === null ? {} : { grantId: `g${op.grant}` }),
        };
        break;
      case "debit":
        entry = { kind: "debit", idempotencyKey: k(op.key), at, amount: op.amount };
        break;
      case "usage":
        entry = {
          kind: "usage",
          idempotencyKey: k(op.key),
          at,
          rule: `r${op.rule}`,
          units: op.units,
          creditsPerUnit: op.perUnit,
          unit: op.unit,
        };
        break;
      case "hold":
        entry = {
          kind: "hold",
          idempotencyKey: k(op.key),
          at,
          holdId: `h${op.hold}`,
          amount: op.amount,
          expiresAt: now + op.ttlHours * HOUR,
        };
        break;
      case "commit": {
        let actual = op.actual;
        if (mode.restricted) actual = Math.min(actual, Number(model.holds.get(`h${op.hold}`)?.amount ?? 0n));
        entry = {
          kind: "commit",
          idempotencyKey: k(op.key),
          at,
          holdId: `h${op.hold}`,
          actualAmount: actual,
        };
        break;
      }
      case "release":
        entry = { kind: "release", idempotencyKey: k(op.key), at, holdId: `h${op.hold}` };
        break;
      case "minimum":
        entry = { kind: "minimum_balance", at, minimumBalance: op.value };
        break;
      case "retry": {
        const keyed = attempts.filter((a) => a.kind !== "minimum_balance");
        if (keyed.length === 0) continue;
        const first = keyed[op.index % keyed.length]!;
        // A retry comes later; a retried hold computes a new TTL end (not part of its identity).
        entry =
          first.kind === "hold" && !mode.restricted
            ? { ...first, at, expiresAt: now + op.ttlHours * HOUR }
            : { ...first, at };
        break;
      }
    }

    const before = ledger.clone();
    const result = ledger.apply(entry);
    const expected = model.apply(entry);
    attempts.push(entry);
    results.push(result);

    // The result is the model's.
    if (!result.ok) {
      expect(expected).toEqual({ ok: false, code: result.error.code });
      // A failed entry changes nothing: not the balance, not the clock, not the keys.
      expect(ledger).toStrictEqual(before);
    } else {
      expect(expected.ok).toBe(true);
      const { kind, replayed, at: effective, balance, available, held } = result;
      const got: Record<string, unknown> = {
        ok: true,
        kind,
        replayed,
        at: effective,
        balance,
        available,
        held,
      };
      for (const f of ["allocations", "overdrawn", "released", "repaid", "holdExpired", "amount"] as const) {
        if (f in expected) got[f] = (result as unknown as Record<string, unknown>)[f];
      }
      expect(got).toEqual(expected);
      expect(result.available).toBe(result.balance - result.held);

      if (!replayed) {
        if (result.kind === "credit") credits += BigInt(result.amount);
        if (result.kind === "debit") debits += BigInt(result.amount);
        if (result.kind === "commit") debits += BigInt(result.actualAmount);
        if (result.kind === "usage") debits += BigInt(result.amount);
        // Admitted debits and holds never take available below the minimum.
        if (result.kind === "debit" || result.kind === "hold") {
          expect(result.available >= result.minimumBalance).toBe(true);
          expect(result.belowMinimum).toBe(false);
        }
        if (entry.kind !== "minimum_balance") {
          const n = (appliedOnce.get(entry.idempotencyKey) ?? 0) + 1;
          appliedOnce.set(entry.idempotencyKey, n);
          // A key applies once: every later use is a replay or a conflict.
          expect(n).toBe(1);
        }
      }
    }
    if (mode.restricted) {
      expect(ledger.view(now).available >= ledger.minimumBalance).toBe(true);
    }
    checkView(ledger, model, now, credits, debits);
  }
  return { ledger, model, attempts, results, now };
}

function checkView(ledger: Ledger, model: Model, now: number, credits: bigint, debits: bigint): LedgerView {
  const t = Math.max(now, ledger.clock);
  const view = ledger.view(now);
  expect(view.at).toBe(t);
  // The identities, from what the ledger reported as applied.
  expect(view.balance).toBe(credits - debits - view.expired);
  expect(view.available).toBe(view.balance - view.held);
  expect(view.credited).toBe(credits);
  expect(view.debited).toBe(debits);
  expect(ledger.expiries(now).reduce((s, x) => s + BigInt(x.amount), 0n)).toBe(view.expired);
  // balance = what the grants hold + the overdraft; an overdraft only while no grant holds anything.
  const remaining = view.grants.reduce((s, g) => s + BigInt(g.remaining), 0n);
  expect(view.balance).toBe(remaining + view.unallocated);
  expect(view.unallocated <= 0n).toBe(true);
  if (view.unallocated < 0n) expect(remaining).toBe(0n);
  for (const g of view.grants) {
    expect(g.amount).toBe(g.remaining + g.expired + g.repaid + spentOf(model, g.id));
  }
  // The model, independently: held from the open holds, expired lazily from each grant.
  expect(view.held).toBe(model.held(t));
  expect(view.balance).toBe(model.balance(t));
  expect(view.expired).toBe(model.grants.reduce((s, g) => s + model.expiredAmount(g, t), 0n));
  expect(view.minimumBalance).toBe(model.min);
  expect(view.belowMinimum).toBe(view.available < view.minimumBalance);
  expect(view.holds.reduce((s, h) => s + BigInt(h.amount), 0n)).toBe(view.held);
  expect(view.grants.map((g) => [g.id, BigInt(g.remaining)])).toEqual(
    model.grants.map((g) => [g.id, model.remaining(g, t)]),
  );
  return view;
}

const spentOf = (model: Model, id: string) => Number(model.grants.find((g) => g.id === id)!.spent);

const late = (mode: Mode) => fc.integer({ min: 0, max: mode.lateWeight > 0 ? 9 : 0 });
const program = (mode: Mode, maxLength: number) =>
  fc.array(fc.tuple(opArb(mode), late(mode)), { minLength: 1, maxLength, size: "max" });

function checkReplay(r: Run, minimumBalance: number) {
  const live = r.ledger.view(r.now + 1_000 * HOUR);
  // The log holds the applied entries; replaying them gives the same results and the same ledger.
  const log = r.attempts.filter((_, i) => r.results[i]!.ok);
  const replayed = replayLedger(log, { minimumBalance });
  expect(replayed.results).toEqual(r.results.filter((x) => x.ok));
  expect(replayed.ledger).toStrictEqual(r.ledger);
  expect(deriveLedger(log, r.now + 1_000 * HOUR, minimumBalance)).toEqual(live);
  // Denied attempts changed nothing, so the raw stream derives the same ledger.
  expect(deriveLedger(r.attempts, r.now + 1_000 * HOUR, minimumBalance)).toEqual(live);
}

describe("ledger properties", () => {
  const modes: [string, Mode][] = [
    ["small amounts", { amount: smallAmount, restricted: false, lateWeight: 1 }],
    ["amounts near 2^53 (exact bigint sums)", { amount: bigAmount, restricted: false, lateWeight: 1 }],
  ];
  for (const [name, mode] of modes) {
    it(`any sequence keeps the identities, matches the model and replays (${name})`, () => {
      fc.assert(
        fc.property(program(mode, 100), fc.constantFrom(0, 0, -500, 200), (ops, minimumBalance) => {
          const r = run(ops, mode, minimumBalance);
          checkReplay(r, minimumBalance);
          // Far in the future every grant with an expiry has expired and every hold has lapsed.
          const end = checkView(
            r.ledger,
            r.model,
            r.now + 10_000 * HOUR,
            r.ledger.view().credited,
            r.ledger.view().debited,
          );
          expect(end.held).toBe(0n);
          expect(end.grants.filter((g) => g.expiresAt !== null).every((g) => g.remaining === 0)).toBe(true);
        }),
        { numRuns: 120 },
      );
    });
  }

  it("without expiry, commit overshoot or a raised minimum, available never drops below the minimum", () => {
    const mode: Mode = { amount: smallAmount, restricted: true, lateWeight: 0 };
    fc.assert(
      fc.property(program(mode, 100), fc.constantFrom(0, -1, -700), (ops, minimumBalance) => {
        const r = run(ops, mode, minimumBalance);
        // At any later instant as well.
        for (const dt of [0, HOUR, 10_000 * HOUR]) {
          expect(r.ledger.view(r.now + dt).available >= BigInt(minimumBalance)).toBe(true);
        }
      }),
      { numRuns: 120 },
    );
  });

  it("a retried credit or debit applies once, whatever else happens in between", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            kind: fc.constantFrom("credit" as const, "debit" as const),
            key: fc.integer({ min: 0, max: 5 }),
            amount: fc.integer({ min: 1, max: 100 }),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          const ledger = new Ledger({ minimumBalance: -1_000_000 });
          const firstAmount = new Map<string, { kind: string; amount: number }>();
          let at = T0;
          for (const s of steps) {
            const idempotencyKey = `k${s.key}`;
            const first = firstAmount.get(idempotencyKey) ?? { kind: s.kind, amount: s.amount };
            firstAmount.set(idempotencyKey, first);
            // Mostly an exact retry of the first use of the key, sometimes a different entry.
            const same = first.kind === s.kind && s.amount % 3 !== 0;
            const entry = { kind: s.kind, idempotencyKey, at: at++, amount: same ? first.amount : s.amount };
            const r = ledger.apply(entry);
            if (entry.kind === first.kind && entry.amount === first.amount) expect(r.ok).toBe(true);
            else expect(r.ok || r.error.code === "CONFLICT").toBe(true);
          }
          let expected = 0n;
          for (const { kind, amount } of firstAmount.values())
            expected += BigInt(kind === "credit" ? amount : -amount);
          expect(ledger.view().balance).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
