import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { afterFailure, DEFAULT_BACKOFF, retryDelay } from "../src/alerts/backoff.js";
import { ManualClock } from "../src/clock.js";

const HOUR = 3_600_000;

/** Plays a delivery that always fails on a fake clock: the times of its attempts. */
function failForever(random: () => number, clock = new ManualClock(0)) {
  const start = clock.now();
  const attempts = [clock.now()];
  for (;;) {
    const next = afterFailure(attempts.length, start, clock.now(), random);
    if (next.state === "failed") return attempts;
    expect(next.nextAttemptAt).toBeGreaterThan(clock.now());
    clock.set(next.nextAttemptAt);
    attempts.push(clock.now());
  }
}

describe("retry schedule", () => {
  it("doubles from 15 s up to 2 h, with each delay in [nominal/2, nominal]", () => {
    const nominal = (n: number) => Math.min(15_000 * 2 ** (n - 1), 2 * HOUR);
    for (let n = 1; n <= 30; n++) {
      expect(retryDelay(n, () => 0)).toBe(nominal(n) / 2);
      expect(retryDelay(n, () => 0.999999)).toBeLessThanOrEqual(nominal(n));
      expect(retryDelay(n, () => 0.999999)).toBeGreaterThan(nominal(n) * 0.99);
    }
    // A broken random source cannot make the delay vanish.
    expect(retryDelay(3, () => Number.NaN)).toBe(30_000);
    expect(retryDelay(3, () => 7)).toBe(30_000);
  });

  it("with no jitter at all, the schedule is fixed: the attempts a day of retries takes", () => {
    const times = failForever(() => 0.5);
    expect(times.at(-1)!).toBeGreaterThanOrEqual(24 * HOUR);
    expect(times.at(-2)!).toBeLessThan(24 * HOUR);
    expect(times.length).toBeGreaterThan(15);
    expect(times.length).toBeLessThan(DEFAULT_BACKOFF.attemptsMax);
  });

  it("whatever the jitter draws, a delivery is retried for at least 24 hours, and not much longer", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1 }),
        (draws) => {
          let i = 0;
          const random = () => draws[i++ % draws.length]!;
          const times = failForever(random);
          const last = times.at(-1)!;
          expect(last).toBeGreaterThanOrEqual(24 * HOUR);
          expect(last).toBeLessThan(26 * HOUR);
          expect(times.length).toBeLessThanOrEqual(DEFAULT_BACKOFF.attemptsMax);
          // Gaps never shrink by more than the jitter allows: gap n ≥ nominal(n)/2.
          for (let n = 1; n < times.length; n++) {
            expect(times[n]! - times[n - 1]!).toBeGreaterThanOrEqual(
              Math.min(15_000 * 2 ** (n - 1), 2 * HOUR) / 2,
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a new round (manual redelivery) starts the 24 hours over", () => {
    const clock = new ManualClock(10 * 24 * HOUR);
    expect(afterFailure(1, clock.now(), clock.now(), () => 0.5).state).toBe("pending");
    expect(afterFailure(1, clock.now() - 24 * HOUR, clock.now(), () => 0.5).state).toBe("failed");
    expect(afterFailure(DEFAULT_BACKOFF.attemptsMax, clock.now(), clock.now(), () => 0.5).state).toBe(
      "failed",
    );
  });
});
