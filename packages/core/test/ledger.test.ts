import { describe, expect, it } from "vitest";
import { TollgateError } from "../src/errors.js";
import {
  compareBurnOrder,
  deriveLedger,
  Ledger,
  type LedgerApplied,
  type LedgerEntry,
  type LedgerResult,
  ledgerIntegerToJson,
  replayLedger,
} from "../src/ledger/index.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MAX = Number.MAX_SAFE_INTEGER;

let n = 0;
const key = () => `key-${n++}`;

const credit = (
  amount: number,
  extra: Partial<Extract<LedgerEntry, { kind: "credit" }>> = {},
): LedgerEntry => ({
  kind: "credit",
  idempotencyKey: key(),
  at: T0,
  amount,
  ...extra,
});
const debit = (amount: number, at = T0, idempotencyKey = key()): LedgerEntry => ({
  kind: "debit",
  idempotencyKey,
  at,
  amount,
});
const hold = (holdId: string, amount: number, at = T0, ttl = HOUR): LedgerEntry => ({
  kind: "hold",
  idempotencyKey: key(),
  at,
  holdId,
  amount,
  expiresAt: at + ttl,
});
const commit = (holdId: string, actualAmount: number, at = T0): LedgerEntry => ({
  kind: "commit",
  idempotencyKey: key(),
  at,
  holdId,
  actualAmount,
});
const release = (holdId: string, at = T0): LedgerEntry => ({
  kind: "release",
  idempotencyKey: key(),
  at,
  holdId,
});

function ok(result: LedgerResult): LedgerApplied {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result;
}
function err(result: LedgerResult): TollgateError {
  if (result.ok) throw new Error(`expected an error, got ${JSON.stringify(result, (_, v) => String(v))}`);
  return result.error;
}
function allocations(result: LedgerResult) {
  const r = ok(result);
  if (r.kind !== "debit" && r.kind !== "commit") throw new Error("not a debit");
  return r.allocations.map((a) => [a.grantId, a.amount]);
}

describe("burn order", () => {
  it("spends the grant expiring tomorrow, then next month, then the one that never expires", () => {
    const l = new Ledger();
    // Granted in the "wrong" order, so that age cannot explain the result.
    ok(l.apply(credit(100, { grantId: "never" })));
    ok(l.apply(credit(100, { grantId: "next-month", expiresAt: T0 + 30 * DAY })));
    ok(l.apply(credit(100, { grantId: "tomorrow", expiresAt: T0 + DAY })));
    expect(allocations(l.apply(debit(60)))).toEqual([["tomorrow", 60]]);
    expect(allocations(l.apply(debit(100)))).toEqual([
      ["tomorrow", 40],
      ["next-month", 60],
    ]);
    expect(allocations(l.apply(debit(90)))).toEqual([
      ["next-month", 40],
      ["never", 50],
    ]);
    const v = l.view();
    expect(v.grants.map((g) => [g.id, g.remaining, g.status])).toEqual([
      ["never", 50, "active"],
      ["next-month", 0, "spent"],
      ["tomorrow", 0, "spent"],
    ]);
    expect(v.balance).toBe(50n);
  });

  it("with the same expiry, lower priority numbers first, then older grants first", () => {
    const l = new Ledger();
    const exp = T0 + DAY;
    ok(l.apply(credit(10, { grantId: "p50-old", expiresAt: exp })));
    ok(l.apply(credit(10, { grantId: "p90", expiresAt: exp, priority: 90 })));
    ok(l.apply(credit(10, { grantId: "p10", expiresAt: exp, priority: 10 })));
    ok(l.apply(credit(10, { grantId: "p50-new", expiresAt: exp, priority: 50, at: T0 + 1 })));
    ok(l.apply(credit(10, { grantId: "p0-later-expiry", expiresAt: exp + 1, priority: 0, at: T0 + 1 })));
    expect(allocations(l.apply(debit(50, T0 + 2)))).toEqual([
      ["p10", 10],
      ["p50-old", 10],
      ["p50-new", 10],
      ["p90", 10],
      ["p0-later-expiry", 10],
    ]);
  });

  it("among grants that never expire: priority, then age", () => {
    const l = new Ledger();
    ok(l.apply(credit(5, { grantId: "a" })));
    ok(l.apply(credit(5, { grantId: "b", priority: 0 })));
    ok(l.apply(credit(5, { grantId: "c", priority: 100 })));
    ok(l.apply(credit(5, { grantId: "d" })));
    expect(allocations(l.apply(debit(20)))).toEqual([
      ["b", 5],
      ["a", 5],
      ["d", 5],
      ["c", 5],
    ]);
  });

  it("compareBurnOrder is the documented total order", () => {
    const g = (expiresAt: number | null, priority: number, seq: number) => ({ expiresAt, priority, seq });
    expect(compareBurnOrder(g(1, 100, 9), g(2, 0, 0))).toBeLessThan(0);
    expect(compareBurnOrder(g(null, 0, 0), g(MAX, 100, 9))).toBeGreaterThan(0);
    expect(compareBurnOrder(g(5, 0, 9), g(5, 1, 0))).toBeLessThan(0);
    expect(compareBurnOrder(g(null, 7, 1), g(null, 7, 2))).toBeLessThan(0);
    expect(compareBurnOrder(g(null, 7, 2), g(null, 7, 2))).toBe(0);
  });
});

describe("minimum balance and overdraft", () => {
  it("denies a debit that would go below the minimum (default 0), all or nothing, changing nothing", () => {
    const l = new Ledger();
    ok(l.apply(credit(100)));
    ok(l.apply(debit(60)));
    const before = l.clone();
    const e = err(l.apply(debit(41, T0 + HOUR, "retry-me")));
    expect(e).toBeInstanceOf(TollgateError);
    expect(e.code).toBe("INSUFFICIENT_BALANCE");
    expect(e.status).toBe(402);
    expect(e.details).toEqual({ amount: 41, available: 40, minimumBalance: 0, shortfall: 1 });
    expect(l).toStrictEqual(before); // not even the clock moved
    expect(l.clock).toBe(T0);
    expect(l.view().balance).toBe(40n);
    // The key was not used up: the same debit succeeds once there is enough.
    ok(l.apply(credit(1)));
    const r = ok(l.apply(debit(41, T0 + HOUR, "retry-me")));
    expect(r.balance).toBe(0n);
    expect(r.replayed).toBe(false);
  });

  it("a negative minimum allows overdraft, recorded as negative unallocated balance and paid back first", () => {
    const l = new Ledger({ minimumBalance: -100 });
    ok(l.apply(credit(50, { grantId: "g1" })));
    const d = ok(l.apply(debit(120)));
    expect(d).toMatchObject({ kind: "debit", overdrawn: 70, balance: -70n, available: -70n });
    expect(allocations(d)).toEqual([["g1", 50]]);
    expect(l.view().unallocated).toBe(-70n);
    expect(err(l.apply(debit(31))).code).toBe("INSUFFICIENT_BALANCE");
    ok(l.apply(debit(30)));
    expect(l.view()).toMatchObject({ balance: -100n, available: -100n, unallocated: -100n });
    // A new credit pays the overdraft back before anything is spendable from it.
    const c = ok(l.apply(credit(250, { grantId: "g2", expiresAt: T0 + DAY })));
    expect(c).toMatchObject({ kind: "credit", repaid: 100, remaining: 150, balance: 150n });
    const v = l.view();
    expect(v.unallocated).toBe(0n);
    expect(v.grants.find((g) => g.id === "g2")).toMatchObject({ amount: 250, repaid: 100, remaining: 150 });
    // Only the unspent 150 can expire: balance = credited − debited − expired.
    const later = l.view(T0 + DAY);
    expect(later).toMatchObject({ balance: 0n, expired: 150n, credited: 300n, debited: 150n });
  });

  it("a credit smaller than the overdraft is all repayment: a spent grant", () => {
    const l = new Ledger({ minimumBalance: -100 });
    ok(l.apply(debit(80)));
    expect(ok(l.apply(credit(30, { grantId: "small" })))).toMatchObject({ repaid: 30, remaining: 0 });
    expect(l.view().grants[0]).toMatchObject({ id: "small", status: "spent", remaining: 0 });
    expect(l.view()).toMatchObject({ balance: -50n, unallocated: -50n });
  });

  it("a positive minimum keeps a reserve; raising it above available is applied and reported", () => {
    const l = new Ledger({ minimumBalance: 10 });
    ok(l.apply(credit(100)));
    expect(err(l.apply(debit(91))).code).toBe("INSUFFICIENT_BALANCE");
    ok(l.apply(debit(90)));
    const m = ok(l.apply({ kind: "minimum_balance", at: T0, minimumBalance: 50 }));
    expect(m).toMatchObject({ belowMinimum: true, shortfall: 40n, minimumBalance: 50n });
    expect(err(l.apply(debit(0))).code).toBe("INSUFFICIENT_BALANCE");
    ok(l.apply({ kind: "minimum_balance", at: T0, minimumBalance: -5 }));
    ok(l.apply(debit(15)));
    expect(l.view()).toMatchObject({ balance: -5n, belowMinimum: false });
  });

  it("check() answers a check without reserve and changes nothing", () => {
    const l = new Ledger();
    ok(l.apply(credit(100, { expiresAt: T0 + DAY })));
    const before = l.clone();
    expect(l.check(100, T0)).toEqual({ allowed: true, available: 100n, shortfall: 0n });
    expect(l.check(101, T0)).toEqual({ allowed: false, available: 100n, shortfall: 1n });
    expect(l.check(1, T0 + DAY)).toEqual({ allowed: false, available: 0n, shortfall: 1n });
    expect(l).toStrictEqual(before);
  });
});

describe("holds (pending transfers)", () => {
  it("reserve, then commit less than held: the rest returns", () => {
    const l = new Ledger();
    ok(l.apply(credit(100)));
    const h = ok(l.apply(hold("r1", 70)));
    expect(h).toMatchObject({ kind: "hold", balance: 100n, held: 70n, available: 30n });
    expect(err(l.apply(debit(31))).code).toBe("INSUFFICIENT_BALANCE");
    expect(err(l.apply(hold("r2", 31))).code).toBe("INSUFFICIENT_BALANCE");
    expect(l.view().holds.map((x) => x.id)).toEqual(["r1"]);
    const c = ok(l.apply(commit("r1", 40)));
    expect(c).toMatchObject({
      kind: "commit",
      released: 70,
      actualAmount: 40,
      holdExpired: false,
      overdrawn: 0,
    });
    expect(c).toMatchObject({ balance: 60n, held: 0n, available: 60n, belowMinimum: false });
    expect(l.holdAt("r1")?.status).toBe("committed");
  });

  it("commit above what the minimum allows is still applied (real usage) and reported", () => {
    const l = new Ledger();
    ok(l.apply(credit(100)));
    ok(l.apply(hold("r1", 80)));
    const c = ok(l.apply(commit("r1", 130)));
    expect(c).toMatchObject({
      balance: -30n,
      available: -30n,
      overdrawn: 30,
      belowMinimum: true,
      shortfall: 30n,
    });
    expect(l.view().unallocated).toBe(-30n);
    // Below the minimum: nothing more is admitted until credits come in.
    expect(err(l.apply(hold("r2", 0))).code).toBe("INSUFFICIENT_BALANCE");
    ok(l.apply(credit(40)));
    ok(l.apply(hold("r2", 10)));
  });

  it("a hold's TTL returns it to available; a late commit still debits the real usage", () => {
    const l = new Ledger();
    ok(l.apply(credit(100)));
    ok(l.apply(hold("r1", 100, T0, HOUR)));
    expect(l.view(T0 + HOUR - 1)).toMatchObject({ held: 100n, available: 0n });
    expect(l.view(T0 + HOUR)).toMatchObject({ held: 0n, available: 100n, holds: [] });
    expect(l.holdAt("r1", T0 + HOUR)?.status).toBe("expired");
    ok(l.apply(hold("r2", 100, T0 + HOUR))); // the lapsed hold no longer counts
    const c = ok(l.apply(commit("r1", 30, T0 + 2 * HOUR)));
    expect(c).toMatchObject({ released: 0, holdExpired: true, balance: 70n, held: 0n, belowMinimum: false });
    // r2 lapsed at T0 + 2h too, exactly as the commit took effect.
  });

  it("release returns the hold; finishing a hold twice is a conflict, an unknown hold is not found", () => {
    const l = new Ledger();
    ok(l.apply(credit(100)));
    ok(l.apply(hold("r1", 60)));
    expect(ok(l.apply(release("r1")))).toMatchObject({ released: 60, available: 100n, held: 0n });
    expect(ok(l.apply(release("r1")))).toMatchObject({ released: 0, replayed: false });
    expect(err(l.apply(commit("r1", 10))).code).toBe("CONFLICT");
    ok(l.apply(hold("r2", 60)));
    ok(l.apply(commit("r2", 60)));
    expect(err(l.apply(commit("r2", 60))).code).toBe("CONFLICT");
    expect(err(l.apply(release("r2"))).code).toBe("CONFLICT");
    expect(err(l.apply(commit("nope", 1))).code).toBe("NOT_FOUND");
    expect(err(l.apply(release("nope"))).code).toBe("NOT_FOUND");
    expect(err(l.apply(hold("r1", 1))).code).toBe("CONFLICT"); // hold ids are never reused
    expect(l.view()).toMatchObject({ balance: 40n, held: 0n });
  });

  it("releasing a hold whose TTL passed returns nothing and blocks a later commit", () => {
    const l = new Ledger();
    ok(l.apply(credit(10)));
    ok(l.apply(hold("r1", 10, T0, HOUR)));
    expect(ok(l.apply(release("r1", T0 + 2 * HOUR)))).toMatchObject({ released: 0, available: 10n });
    expect(err(l.apply(commit("r1", 5, T0 + 2 * HOUR))).code).toBe("CONFLICT");
  });

  it("a hold's TTL must end after it takes effect", () => {
    const l = new Ledger();
    const e = err(
      l.apply({ kind: "hold", idempotencyKey: key(), at: T0, holdId: "r", amount: 1, expiresAt: T0 }),
    );
    expect(e.code).toBe("INVALID_REQUEST");
    expect(e.details).toMatchObject({ field: "expiresAt" });
  });
});

describe("expiry", () => {
  it("a grant is spendable while t < expiresAt; at expiresAt its unspent part expires", () => {
    const l = new Ledger();
    ok(l.apply(credit(100, { grantId: "g", expiresAt: T0 + DAY })));
    ok(l.apply(debit(30, T0 + DAY - 1)));
    expect(l.view(T0 + DAY - 1)).toMatchObject({ balance: 70n, expired: 0n });
    const v = l.view(T0 + DAY);
    expect(v).toMatchObject({ balance: 0n, expired: 70n, credited: 100n, debited: 30n });
    expect(v.grants[0]).toMatchObject({ id: "g", remaining: 0, expired: 70, status: "expired" });
    expect(l.expiries(T0 + DAY)).toEqual([{ grantId: "g", amount: 70, at: T0 + DAY }]);
    expect(l.expiries(T0 + DAY - 1)).toEqual([]);
    expect(err(l.apply(debit(1, T0 + DAY))).code).toBe("INSUFFICIENT_BALANCE");
    // Viewing changed nothing; the next entry materializes the expiry in the state.
    expect(l.view().expired).toBe(0n);
    ok(l.apply(credit(5, { at: T0 + DAY })));
    expect(l.view()).toMatchObject({ expired: 70n, balance: 5n });
    expect(l.expiries()).toEqual([{ grantId: "g", amount: 70, at: T0 + DAY }]);
  });

  it("an expiry under a hold can take available below the minimum: allowed, reported", () => {
    const l = new Ledger();
    ok(l.apply(credit(100, { expiresAt: T0 + DAY })));
    ok(l.apply(hold("r1", 100, T0, 2 * DAY)));
    const v = l.view(T0 + DAY);
    expect(v).toMatchObject({
      balance: 0n,
      held: 100n,
      available: -100n,
      belowMinimum: true,
      shortfall: 100n,
    });
    expect(err(l.apply(hold("r2", 0, T0 + DAY))).code).toBe("INSUFFICIENT_BALANCE");
    // The commit still records the real usage.
    expect(ok(l.apply(commit("r1", 80, T0 + DAY)))).toMatchObject({
      balance: -80n,
      overdrawn: 80,
      available: -80n,
    });
  });

  it("a credit that has already expired is refused", () => {
    const l = new Ledger();
    expect(err(l.apply(credit(1, { expiresAt: T0 }))).code).toBe("INVALID_REQUEST");
  });
});

describe("idempotency", () => {
  it("a retried credit or debit returns the first result and applies once", () => {
    const l = new Ledger();
    const c = { kind: "credit", idempotencyKey: "c1", at: T0, amount: 100 } as const;
    const first = ok(l.apply(c));
    const again = ok(l.apply({ ...c, at: T0 + HOUR, description: "descriptions are not compared" }));
    expect(again).toEqual({ ...first, replayed: true });
    const d = { kind: "debit", idempotencyKey: "d1", at: T0, amount: 30 } as const;
    const firstDebit = ok(l.apply(d));
    ok(l.apply(credit(1000)));
    expect(ok(l.apply({ ...d, at: T0 + 2 * HOUR }))).toEqual({ ...firstDebit, replayed: true });
    expect(l.view()).toMatchObject({ balance: 1070n, credited: 1100n, debited: 30n });
    expect(l.clock).toBe(T0); // replays do not move the clock
  });

  it("the same key with different content is a conflict, across kinds too; nothing changes", () => {
    const l = new Ledger();
    ok(l.apply({ kind: "credit", idempotencyKey: "k", at: T0, amount: 100 }));
    const before = l.clone();
    const e = err(l.apply({ kind: "credit", idempotencyKey: "k", at: T0, amount: 101 }));
    expect(e.code).toBe("CONFLICT");
    expect(e.status).toBe(409);
    expect(e.details).toMatchObject({ field: "idempotencyKey", kind: "credit" });
    expect(err(l.apply({ kind: "debit", idempotencyKey: "k", at: T0, amount: 100 })).code).toBe("CONFLICT");
    expect(err(l.apply({ kind: "credit", idempotencyKey: "k", at: T0, amount: 100, priority: 1 })).code).toBe(
      "CONFLICT",
    );
    expect(l).toStrictEqual(before);
    // Spelling out the default is the same entry.
    expect(
      ok(l.apply({ kind: "credit", idempotencyKey: "k", at: T0, amount: 100, priority: 50 })).replayed,
    ).toBe(true);
  });

  it("a retried hold is the same reservation even with a recomputed TTL end", () => {
    const l = new Ledger();
    ok(l.apply(credit(100)));
    const h = {
      kind: "hold",
      idempotencyKey: "h",
      at: T0,
      holdId: "r",
      amount: 60,
      expiresAt: T0 + HOUR,
    } as const;
    ok(l.apply(h));
    const again = ok(l.apply({ ...h, at: T0 + 10, expiresAt: T0 + 10 + HOUR }));
    expect(again).toMatchObject({ replayed: true, expiresAt: T0 + HOUR });
    expect(l.view()).toMatchObject({ held: 60n });
    const c = { kind: "commit", idempotencyKey: "c", at: T0, holdId: "r", actualAmount: 50 } as const;
    const first = ok(l.apply(c));
    expect(ok(l.apply(c))).toEqual({ ...first, replayed: true });
    expect(err(l.apply({ ...c, actualAmount: 51 })).code).toBe("CONFLICT");
    expect(l.view().balance).toBe(50n);
  });

  it("a grant id is unique", () => {
    const l = new Ledger();
    ok(l.apply(credit(1, { grantId: "g" })));
    expect(err(l.apply(credit(1, { grantId: "g" }))).code).toBe("CONFLICT");
    // A credit's grant id defaults to its idempotency key.
    ok(l.apply({ kind: "credit", idempotencyKey: "x", at: T0, amount: 1 }));
    expect(err(l.apply(credit(1, { grantId: "x" }))).code).toBe("CONFLICT");
  });
});

describe("time", () => {
  it("never runs backwards: an entry stamped before the clock takes effect at the clock", () => {
    const l = new Ledger();
    ok(l.apply(credit(100, { expiresAt: T0 + DAY })));
    ok(l.apply(credit(1, { at: T0 + DAY })));
    // Back-dated before the expiry: it cannot spend the expired grant.
    const r = err(l.apply(debit(2, T0 + HOUR)));
    expect(r.code).toBe("INSUFFICIENT_BALANCE");
    const d = ok(l.apply(debit(1, T0 + HOUR)));
    expect(d.at).toBe(T0 + DAY);
    expect(l.clock).toBe(T0 + DAY);
    expect(l.view(T0).at).toBe(T0 + DAY);
  });
});

describe("validation", () => {
  const cases: [string, unknown, string][] = [
    ["amount 0 credit", { kind: "credit", idempotencyKey: "k", at: T0, amount: 0 }, "amount"],
    ["fractional amount", { kind: "debit", idempotencyKey: "k", at: T0, amount: 1.5 }, "amount"],
    ["negative amount", { kind: "debit", idempotencyKey: "k", at: T0, amount: -1 }, "amount"],
    ["unsafe amount", { kind: "debit", idempotencyKey: "k", at: T0, amount: 2 ** 53 }, "amount"],
    ["NaN at", { kind: "debit", idempotencyKey: "k", at: Number.NaN, amount: 1 }, "at"],
    ["empty key", { kind: "debit", idempotencyKey: "", at: T0, amount: 1 }, "idempotencyKey"],
    ["long key", { kind: "debit", idempotencyKey: "k".repeat(257), at: T0, amount: 1 }, "idempotencyKey"],
    ["priority", { kind: "credit", idempotencyKey: "k", at: T0, amount: 1, priority: 101 }, "priority"],
    ["priority float", { kind: "credit", idempotencyKey: "k", at: T0, amount: 1, priority: 0.5 }, "priority"],
    ["expiresAt", { kind: "credit", idempotencyKey: "k", at: T0, amount: 1, expiresAt: 1.5 }, "expiresAt"],
    ["grantId", { kind: "credit", idempotencyKey: "k", at: T0, amount: 1, grantId: "" }, "grantId"],
    ["description", { kind: "debit", idempotencyKey: "k", at: T0, amount: 1, description: 7 }, "description"],
    ["holdId", { kind: "hold", idempotencyKey: "k", at: T0, amount: 1, expiresAt: T0 + 1 }, "holdId"],
    [
      "actual",
      { kind: "commit", idempotencyKey: "k", at: T0, holdId: "h", actualAmount: -2 },
      "actualAmount",
    ],
    ["minimum", { kind: "minimum_balance", at: T0, minimumBalance: 0.5 }, "minimumBalance"],
    ["kind", { kind: "refund", idempotencyKey: "k", at: T0, amount: 1 }, "kind"],
  ];
  for (const [name, entry, field] of cases) {
    it(`refuses ${name} (INVALID_REQUEST, field ${field}) and changes nothing`, () => {
      const l = new Ledger();
      ok(l.apply(credit(10)));
      const before = l.clone();
      const e = err(l.apply(entry as LedgerEntry));
      expect(e.code).toBe("INVALID_REQUEST");
      expect(e.status).toBe(400);
      expect(e.details).toMatchObject({ field });
      expect(l).toStrictEqual(before);
    });
  }

  it("the constructor refuses an unsafe minimum", () => {
    expect(() => new Ledger({ minimumBalance: 0.5 })).toThrow(TollgateError);
  });
});

describe("exact integers", () => {
  it("sums past 2^53 stay exact (bigint), each entry up to 2^53 − 1", () => {
    const l = new Ledger({ minimumBalance: -MAX });
    for (let i = 0; i < 3; i++) ok(l.apply(credit(MAX, { grantId: `g${i}` })));
    expect(l.view().balance).toBe(3n * BigInt(MAX));
    const d = ok(l.apply(debit(MAX - 1)));
    expect(allocations(d)).toEqual([["g0", MAX - 1]]);
    expect(allocations(l.apply(debit(MAX)))).toEqual([
      ["g0", 1],
      ["g1", MAX - 1],
    ]);
    expect(l.view()).toMatchObject({ balance: BigInt(MAX) + 1n, credited: 3n * BigInt(MAX) });
    ok(l.apply(hold("big", MAX)));
    ok(l.apply(debit(MAX)));
    expect(l.view()).toMatchObject({ balance: 1n - BigInt(MAX) + BigInt(MAX), held: BigInt(MAX) });
    expect(l.view().available).toBe(1n - BigInt(MAX));
    // Overdraft far below −2^53 by real usage: still exact.
    const c = ok(l.apply(commit("big", MAX)));
    expect(c.balance).toBe(1n - BigInt(MAX));
    ok(l.apply(hold("big2", 0)));
    expect(ok(l.apply(commit("big2", MAX))).balance).toBe(1n - 2n * BigInt(MAX));
    expect(ledgerIntegerToJson(l.view().balance)).toBe("-18014398509481981");
    expect(ledgerIntegerToJson(-5n)).toBe(-5);
  });

  it("an insufficient-balance error's details are JSON-safe", () => {
    const l = new Ledger({ minimumBalance: MAX });
    const e = err(l.apply(debit(MAX)));
    expect(JSON.parse(JSON.stringify(e.toBody()))).toMatchObject({
      error: {
        code: "INSUFFICIENT_BALANCE",
        details: { minimumBalance: MAX, shortfall: "18014398509481982" },
      },
    });
  });
});

describe("derivation", () => {
  it("deriveLedger gives the API's balance figures from the log", () => {
    const log: LedgerEntry[] = [
      { kind: "credit", idempotencyKey: "c1", at: T0, amount: 500, expiresAt: T0 + DAY, priority: 10 },
      { kind: "credit", idempotencyKey: "c2", at: T0, amount: 300, description: "top-up" },
      { kind: "debit", idempotencyKey: "d1", at: T0 + HOUR, amount: 200 },
      {
        kind: "hold",
        idempotencyKey: "h1",
        at: T0 + HOUR,
        holdId: "r1",
        amount: 100,
        expiresAt: T0 + 2 * HOUR,
      },
    ];
    const v = deriveLedger(log, T0 + HOUR);
    expect(v).toMatchObject({ balance: 600n, available: 500n, held: 100n, minimumBalance: 0n });
    expect(v.grants).toEqual([
      {
        id: "c1",
        amount: 500,
        remaining: 300,
        expired: 0,
        repaid: 0,
        expiresAt: T0 + DAY,
        priority: 10,
        grantedAt: T0,
        status: "active",
      },
      {
        id: "c2",
        amount: 300,
        remaining: 300,
        expired: 0,
        repaid: 0,
        expiresAt: null,
        priority: 50,
        grantedAt: T0,
        status: "active",
        description: "top-up",
      },
    ]);
    expect(v.holds).toEqual([
      { id: "r1", amount: 100, heldAt: T0 + HOUR, expiresAt: T0 + 2 * HOUR, status: "active" },
    ]);
    expect(deriveLedger(log, T0 + DAY)).toMatchObject({
      balance: 300n,
      available: 300n,
      held: 0n,
      expired: 300n,
    });
    expect(deriveLedger(log, T0, -50).minimumBalance).toBe(-50n);
  });

  it("replay reports each entry's result; clone is independent; view does not change the ledger", () => {
    const { ledger, results } = replayLedger([credit(10), debit(20), debit(5)]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual(["ok", "INSUFFICIENT_BALANCE", "ok"]);
    const copy = ledger.clone();
    ok(copy.apply(debit(5)));
    expect(ledger.view().balance).toBe(5n);
    expect(copy.view().balance).toBe(0n);
    const before = ledger.clone();
    ledger.view(T0 + 1000 * DAY);
    ledger.expiries(T0 + 1000 * DAY);
    ledger.holdAt("x");
    expect(ledger).toStrictEqual(before);
  });

  it("results are frozen: a caller cannot edit what a retry will return", () => {
    const l = new Ledger();
    ok(l.apply(credit(10)));
    const d = ok(l.apply(debit(5, T0, "d")));
    expect(Object.isFrozen(d)).toBe(true);
    if (d.kind !== "debit") throw new Error("debit");
    expect(() => d.allocations.push({ grantId: "x", amount: 1 })).toThrow();
  });
});
