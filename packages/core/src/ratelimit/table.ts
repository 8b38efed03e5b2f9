import { assert } from "../errors.js";
import { type AlgorithmEntry, algorithmOf } from "./dispatch.js";
import type { RateLimitConfig, RateLimitRequest, RateLimitResult, RateLimitState } from "./types.js";

export interface RateLimitTableOptions {
  /**
   * Slots allocated up front; the slab doubles when they are used up.
   * @default 1024
   */
  initialCapacity?: number;
}

/**
 * The embedded server's in-memory rate-limit state for one limit (one config): string key → state,
 * the states packed in one Float64Array slab. Each slot is `[expiresAt, ...state]`; freed slots are
 * reused through a free list threaded through their first cell, and the slab doubles when full.
 *
 * A slot's `expiresAt` is the instant from which its state decides exactly as a fresh key would
 * (`expiresAt(config, state)`), so `sweep(now)` evicts only keys whose eviction changes no decision —
 * for most keys, about one window after their last write. No timers: the caller sweeps.
 *
 * One table per config: a state only means something under the config that wrote it, so a changed
 * limit gets a new table.
 */
export class RateLimitTable {
  readonly config: RateLimitConfig;
  readonly stateSize: number;
  private readonly stride: number;
  private readonly initialCapacity: number;
  private slab: Float64Array;
  private slotCount: number;
  /** Slots [0, highWater) have been handed out at least once; the rest were never used. */
  private highWater = 0;
  /** Head of the free list (−1: empty); a free slot's first cell holds the next free slot. */
  private freeHead = -1;
  private readonly slots = new Map<string, number>();
  private cursor: Iterator<[string, number]> | undefined;
  /** What `read` answers in: one array per table, overwritten by the next read. */
  private readonly scratch: number[];
  /** The key `read` last found and its slot, so that a `set` right after it skips the lookup. */
  private lastKey: string | undefined;
  private lastSlot = -1;
  /** The config's algorithm, looked up once. */
  private readonly algorithm: Readonly<AlgorithmEntry>;
  /** What `evaluate` answers in: one result per table, overwritten by the next evaluation. */
  private readonly out: RateLimitResult;

  constructor(config: RateLimitConfig, options: RateLimitTableOptions = {}) {
    const initialCapacity = options.initialCapacity ?? 1024;
    assert(Number.isInteger(initialCapacity) && initialCapacity >= 1, "initialCapacity must be ≥ 1");
    this.config = config;
    this.algorithm = algorithmOf(config.algorithm);
    this.stateSize = this.algorithm.stateSize;
    this.stride = 1 + this.stateSize;
    this.initialCapacity = initialCapacity;
    this.slotCount = initialCapacity;
    this.slab = new Float64Array(initialCapacity * this.stride);
    this.scratch = new Array<number>(this.stateSize).fill(0);
    this.out = {
      state: new Array<number>(this.stateSize).fill(0),
      decision: { allowed: false, limit: 0, remaining: 0, resetAt: 0, retryAfterMs: 0 },
    };
  }

  /** Keys held. */
  get size(): number {
    return this.slots.size;
  }

  /** Slots allocated (held keys plus free slots). */
  get capacity(): number {
    return this.slotCount;
  }

  /** Bytes of the slab (the Map and the key strings come on top). */
  get slabBytes(): number {
    return this.slab.byteLength;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** A copy of the key's state, or `undefined` for a key not held (never seen, deleted or evicted). */
  get(key: string): number[] | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const state = new Array<number>(this.stateSize);
    const base = slot * this.stride + 1;
    for (let i = 0; i < this.stateSize; i++) state[i] = this.slab[base + i]!;
    return state;
  }

  /**
   * The key's state without a copy per call: in an array owned by the table that the next `read`
   * overwrites (an evaluation reads its input state and never keeps it), or `undefined` for a key
   * not held.
   */
  read(key: string): RateLimitState | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    this.lastKey = key;
    this.lastSlot = slot;
    const state = this.scratch;
    const base = slot * this.stride + 1;
    for (let i = 0; i < this.stateSize; i++) state[i] = this.slab[base + i]!;
    return state;
  }

  /**
   * Decides `request` for the key at `now` (the config's algorithm over the key's state), without
   * storing anything and without allocating: the answer is an object owned by the table that the
   * next `evaluate` overwrites. `commit(key)` right after stores its state.
   */
  evaluate(key: string, request: RateLimitRequest, now: number): RateLimitResult {
    return this.algorithm.evaluate(this.config, this.read(key), request, now, this.out);
  }

  /** Stores the state of the last `evaluate` as the key's (what `set(key, evaluate(...).state)` does). */
  commit(key: string): void {
    this.set(key, this.out.state);
  }

  /** When the key's state stops mattering (see the class comment), or `undefined` for a key not held. */
  expiresAt(key: string): number | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.slab[slot * this.stride]!;
  }

  set(key: string, state: RateLimitState): void {
    if (state.length !== this.stateSize) assert(false, `state must have ${this.stateSize} entries`);
    let slot = key === this.lastKey ? this.lastSlot : this.slots.get(key);
    if (slot === undefined) {
      slot = this.allocate();
      this.slots.set(key, slot);
    }
    const base = slot * this.stride;
    this.slab[base] = this.algorithm.expiresAt(this.config, state);
    for (let i = 0; i < this.stateSize; i++) this.slab[base + 1 + i] = state[i]!;
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.slots.delete(key);
    this.lastKey = undefined;
    const base = slot * this.stride;
    this.slab.fill(0, base, base + this.stride);
    this.slab[base] = this.freeHead;
    this.freeHead = slot;
    return true;
  }

  /** Forget every key and shrink the slab back to its initial capacity. */
  clear(): void {
    this.slots.clear();
    this.lastKey = undefined;
    this.slotCount = this.initialCapacity;
    this.slab = new Float64Array(this.initialCapacity * this.stride);
    this.highWater = 0;
    this.freeHead = -1;
    this.cursor = undefined;
  }

  /**
   * Evict every key whose state has expired by `now`, examining at most `budget` keys (default: all).
   * A budgeted sweep resumes where the previous one stopped, so a caller can spread a pass over many
   * calls. Returns the number of keys evicted.
   */
  sweep(now: number, budget: number = this.slots.size): number {
    let evicted = 0;
    let examined = 0;
    let restarted = false;
    while (examined < budget) {
      if (this.cursor === undefined) {
        if (restarted) break;
        this.cursor = this.slots.entries();
        restarted = true;
      }
      const step = this.cursor.next();
      if (step.done === true) {
        this.cursor = undefined;
        continue;
      }
      examined++;
      const [key, slot] = step.value;
      if (this.slab[slot * this.stride]! <= now) {
        this.delete(key); // deleting the current entry keeps a Map iterator valid
        evicted++;
      }
    }
    return evicted;
  }

  private allocate(): number {
    if (this.freeHead >= 0) {
      const slot = this.freeHead;
      const base = slot * this.stride;
      this.freeHead = this.slab[base]!;
      this.slab[base] = 0;
      return slot;
    }
    if (this.highWater === this.slotCount) {
      const grown = new Float64Array(this.slotCount * 2 * this.stride);
      grown.set(this.slab);
      this.slab = grown;
      this.slotCount *= 2;
    }
    return this.highWater++;
  }
}
