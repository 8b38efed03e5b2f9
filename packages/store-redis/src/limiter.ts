import { createHash } from "node:crypto";
import {
  type BalanceGate,
  type CheckEvent,
  type CheckResult,
  type Clock,
  type ConcurrencyLimit,
  type CustomerContext,
  canonicalJson,
  decideQuota,
  type ErrorCode,
  evaluate as evaluateRate,
  KeyedQueue,
  type LimitBook,
  type LimiterContext,
  type LimiterPort,
  type LimitOutcome,
  type MeterDef,
  MinHeap,
  meterMatches,
  meterValue,
  notFound,
  periodWindow,
  type QuotaLimit,
  type RateLimit,
  type RateLimitConfig,
  type RateLimitDecision,
  RETRY_NEVER,
  type ReservationRecord,
  type Store,
  TollgateError,
  type UsageEvent,
} from "@tollgate/core";
import { Cluster, Command, Redis } from "ioredis";
import { encodeBulk, RespWriter } from "./resp.js";
import { CAS_LUA, CHECK_LUA, FINISH_LUA, INCR_LUA, LOAD_LUA, REBUILD_LUA } from "./scripts.js";

export interface RedisLimiterOptions {
  /** @example "redis://127.0.0.1:6379" */
  url: string;
  /**
   * Prefix of every key, so several deployments can share one Redis.
   * @default "tg"
   */
  prefix?: string;
  /**
   * A Redis Cluster: `url` lists one or more nodes (comma-separated); the client follows the cluster's
   * slot map. Every key of a workspace then carries one hash tag, so that a check — whose limits can
   * be the customer's, its keys' and the workspace's — stays one script in one slot: workspaces spread
   * over the cluster's nodes, each workspace on one. @default false
   */
  cluster?: boolean;
}

/** CHECK_LUA's reply: a status, then strings (and the markers' or quotas' positions, as numbers). */
type CheckReply = (string | number)[];

type RedisWithScripts = (Redis | Cluster) & Scripts;
interface Scripts {
  tgCheck(numKeys: number, ...args: (string | number)[]): Promise<CheckReply>;
  tgFinish(k1: string, k2: string, id: string): Promise<number>;
  tgLoad(k1: string, k2: string, asOf: number, ttl: number, fields: string): Promise<number>;
  tgIncr(k1: string, k2: string, seq: number, group: string, amount: number, ttl: number): Promise<number>;
  tgRebuild(marker: string, body: string): Promise<number>;
  tgCas(key: string, expected: string, next: string, ttl: number): Promise<number | string>;
}

const CHECK_ATTEMPTS_MAX = 50;
const PENDING_TTL_MS = 10 * 60_000;
/** Counters of a calendar window live until a day past its end (then a check starts a new window). */
const COUNTER_GRACE_MS = 86_400_000;
const ALL_TIME_TTL_MS = 30 * 86_400_000;

interface QuotaItem {
  limit: QuotaLimit;
  meter: MeterDef;
  family: FamilyRef;
  group: Record<string, string | null>;
  groupKey: string;
  cost: number;
}
/**
 * What this process last saw of one Redis value (a key, or a hash field): the value its next check
 * expects there (compare-and-set). One object per value, shared by every reference to it, so that a
 * check reads and writes it without looking it up; `value` undefined when nothing is known.
 */
interface Seen {
  value: string | undefined;
  /** A rate state's `value` as numbers, when this process wrote it (else parsed from `value`). */
  state: number[] | undefined;
  /** The RESP encoding of the string `encoded` (a quota's value, sent as is by every check). */
  bytes: Buffer | undefined;
  encoded: string | undefined;
}
interface SubjectRef {
  workspaceId: string;
  key: string;
  /** `key` as a RESP bulk string. */
  keyBytes: Buffer;
  /** Its subject's marker. */
  marker: string;
  markerBytes: Buffer;
  /** What was last seen of `key`, valid while `seenEpoch` is the limiter's (see seenOf). */
  seen: Seen;
  seenEpoch: number;
}
/** What was last seen of a quota counter's field and of its holds' field. */
interface QuotaSeen {
  used: Seen;
  held: Seen;
  epoch: number;
}
interface RateItem {
  limit: RateLimit;
  config: RateLimitConfig;
  /** How long its idle state is kept, in ms, as text. */
  ttl: string;
  ttlBytes: Buffer;
  ref: SubjectRef;
  cost: number;
}
interface CustomerKeys {
  workspaceId: string;
  /** The customer's marker: its reservations (x keys, expiry index) are named after it. */
  marker: string;
  markerBytes: Buffer;
  /** The key of its checks' queue in this process. */
  queue: string;
}
interface FamilyRef {
  tag: string;
  /** Its subject's marker. */
  marker: string;
  markerBytes: Buffer;
  counter: string;
  counterBytes: Buffer;
  pending: string;
  holds: string;
  holdsBytes: Buffer;
  /** Per group (field), what was last seen of its usage and holds. */
  seen: Map<string, QuotaSeen>;
  /** Rolling periods: "bucket ms:window ms", as the script takes them ("" for calendar periods). */
  rollingArg: string;
  rollingArgBytes: Buffer;
  start: number;
  end: number | null;
  /** Rolling periods: counters per bucket (field group + "\u0003" + bucket start). */
  rolling: { windowMs: number; bucketMs: number } | null;
  /** Scan bounds for a load. */
  from: number | undefined;
  to: number | undefined;
}

/**
 * The limiter for several processes: quota counters, holds, concurrency leases and rate-limit states
 * live in Redis; a check is one EVALSHA that checks every value the decision was made from and applies
 * the writes only if all are current (compare-and-set). The decisions are core's (decideQuota,
 * ratelimit/evaluate), made in this process from the values it last saw, so no algorithm is written
 * twice; a stale value costs one more round trip (the script returns the current ones).
 *
 * Durability: quota usage comes from the durable store (PostgreSQL): a counter missing from Redis is
 * loaded from a snapshot scan (scanUsage) whose commit sequence tells which later increments to apply,
 * exactly once. Holds and slots of active reservations are rebuilt from the stored reservations when a
 * subject's marker key is missing (Redis flushed or replaced), before any check of it is answered.
 * Rate-limit windows are hot state only and start empty after a flush.
 *
 * Keys carry a hash tag per subject ({workspace|customer}, or {workspace|*} for workspace-wide limits);
 * on a Redis Cluster (`cluster: true`) one tag per workspace, so that every check is one script in
 * one slot.
 *
 * Not yet: rolling-period quotas and balance gates across processes (see docs/scale-out.md).
 */
export class RedisLimiter implements LimiterPort {
  readonly redis: RedisWithScripts;
  private readonly store: Store;
  private readonly book: LimitBook;
  private readonly clock: Clock;
  private readonly newId: () => string;
  private readonly prefix: string;
  /**
   * What was last seen per key (and "key\u0000field" for a hash field): the expected values of the
   * next check. References (SubjectRef, FamilyRef) hold their entries, resolved again when
   * `seenEpoch` moves (the map was dropped, see forgetAll).
   */
  private readonly seen = new Map<string, Seen>();
  private seenEpoch = 0;
  /** TTLs of the reservations this process made or found active at start: sweep() expires them. */
  private readonly due = new MinHeap<{ at: number; workspaceId: string; id: string }>((a, b) => a.at - b.at);
  private readonly committing = new Map<string, Promise<unknown>>();
  private readonly familyMemo = new WeakMap<
    CustomerContext,
    Map<QuotaLimit, { meter: MeterDef; workspaceId: string; ref: FamilyRef }>
  >();
  /** Per rate or concurrency limit object: subject → its key and its subject's marker (bounded). */
  private readonly subjectKeys = new WeakMap<object, Map<string, SubjectRef>>();
  /** Per customer context: its tag's marker (its reservations are named after it). */
  private readonly customerMarkers = new WeakMap<CustomerContext, CustomerKeys>();
  /** Per rate limit object: its config and how long its idle state is kept. */
  private readonly rateConfigs = new WeakMap<
    RateLimit,
    { config: RateLimitConfig; ttl: number; ttlText: string; ttlBytes: Buffer }
  >();
  /** workspace → its definitions version key (and as a RESP bulk string) */
  private readonly versionKeys = new Map<string, { key: string; bytes: Buffer }>();

  constructor(context: LimiterContext, options: RedisLimiterOptions) {
    this.store = context.store;
    this.book = context.book;
    this.clock = context.clock;
    this.newId = context.newId;
    this.prefix = options.prefix ?? "tg";
    this.cluster = options.cluster ?? false;
    // No offline queue: while Redis is unreachable a command fails at once, so fail_mode answers
    // without waiting for reconnect attempts (restore() waits for the first connection).
    const redis: Redis | Cluster = this.cluster
      ? new Cluster(
          options.url.split(",").map((u) => u.trim()),
          {
            enableOfflineQueue: false,
            redisOptions: { maxRetriesPerRequest: 1 },
            // Reconnect by itself after the cluster was unreachable (as a single Redis does).
            clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
          },
        )
      : new Redis(options.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
    redis.on("error", () => {}); // reconnects by itself; commands fail meanwhile (UNAVAILABLE)
    redis.defineCommand("tgCheck", { lua: CHECK_LUA });
    redis.defineCommand("tgFinish", { numberOfKeys: 2, lua: FINISH_LUA });
    redis.defineCommand("tgLoad", { numberOfKeys: 2, lua: LOAD_LUA });
    redis.defineCommand("tgIncr", { numberOfKeys: 2, lua: INCR_LUA });
    redis.defineCommand("tgRebuild", { numberOfKeys: 1, lua: REBUILD_LUA });
    redis.defineCommand("tgCas", { numberOfKeys: 1, lua: CAS_LUA });
    this.redis = redis as RedisWithScripts;
    // Definitions (limits, plans, meters) are cached per process by the LimitBook. A write in one
    // process bumps the workspace's version in Redis and tells the others (pub/sub); every check also
    // compares the version it decided with, so no check is answered from an outdated book.
    const book = this.book;
    const invalidateHere = book.invalidate.bind(book);
    this.invalidateHere = invalidateHere;
    book.invalidate = (workspaceId: string) => {
      invalidateHere(workspaceId);
      this.versions.delete(workspaceId);
      this.redis
        .incr(this.versionKey(workspaceId))
        .then(() => this.redis.publish(`${this.prefix}:defs`, workspaceId))
        .catch(() => {});
    };
    this.subscriber =
      redis instanceof Cluster
        ? redis.duplicate(undefined, { enableOfflineQueue: true })
        : redis.duplicate({ enableOfflineQueue: true });
    this.subscriber.on("error", () => {});
    this.subscriber.subscribe(`${this.prefix}:defs`).catch(() => {});
    this.subscriber.on("message", (_channel: string, workspaceId: string) => {
      invalidateHere(workspaceId);
      this.versions.delete(workspaceId);
    });
  }

  private readonly invalidateHere: (workspaceId: string) => void;
  private readonly subscriber: Redis | Cluster;
  /** Redis Cluster: one hash tag per workspace (see RedisLimiterOptions.cluster). */
  private readonly cluster: boolean;
  /** workspace → the definitions version its loaded book was read at */
  private readonly versions = new Map<string, string>();
  /** Checks of one subject in this process run one at a time (only other processes then contend). */
  private readonly queues = new KeyedQueue();
  /** Checks sent and not answered yet. */
  private sent = 0;
  /** The connection's socket while it is corked (until the end of the tick), else null. */
  private corked: NodeJS.WritableStream | null = null;
  private readonly uncork = (): void => {
    const stream = this.corked as { uncork(): void } | null;
    this.corked = null;
    stream?.uncork();
  };

  /**
   * The checks sent within one tick leave in one write: the socket is corked until the next tick.
   * Each check is still one script call (one round trip), but under concurrency this process and
   * Redis make one system call for many of them. (ioredis' enableAutoPipelining batches too, but
   * builds a Pipeline per batch: measured here, its garbage collection ate what the fewer writes
   * saved in this process.) A single Redis only: a cluster client writes to several sockets.
   * A check sent while no other is awaiting its answer is written at once: one check at a time
   * gains nothing from a batch and would pay for the buffering (and a writev for one request).
   */
  private cork(): void {
    if (this.corked !== null || this.sent === 0 || !(this.redis instanceof Redis)) return;
    const stream = this.redis.stream as (NodeJS.WritableStream & { cork(): void }) | undefined;
    if (!stream) return;
    stream.cork();
    this.corked = stream;
    process.nextTick(this.uncork);
  }

  /** Sockets that have been sent CHECK_LUA (by EVAL): EVALSHA is known to work there. */
  private readonly checkLoaded = new WeakSet<object>();
  /** Encodes the check script's calls. */
  private readonly resp = new RespWriter();
  /** Keys as RESP bulk strings (bounded): a check's keys are mostly the same strings again. */
  private readonly encodedKeys = new Map<string, Buffer>();

  private keyBytes(key: string): Buffer {
    let b = this.encodedKeys.get(key);
    if (b === undefined) {
      if (this.encodedKeys.size >= 50_000) this.encodedKeys.clear();
      b = encodeBulk(key);
      this.encodedKeys.set(key, b);
    }
    return b;
  }

  /**
   * Sends a call of CHECK_LUA encoded by EVALSHA (see checkOnce): as it is, or by EVAL on a socket
   * that has not been sent the script yet (the first call on each connection, as ioredis'
   * defineCommand does) or when `load` is set (the server answered NOSCRIPT).
   */
  private sendCheck(request: Buffer, load: boolean): Promise<CheckReply> {
    const redis = this.redis as Redis;
    const stream = redis.stream as object | undefined;
    let payload = request;
    if (load || stream === undefined || !this.checkLoaded.has(stream)) {
      if (stream !== undefined) this.checkLoaded.add(stream);
      // "*<count>\r\n" stays; "$7\r\nevalsha\r\n$40\r\n<sha>\r\n" becomes EVAL and the script.
      const count = request.indexOf(0x0a) + 1;
      payload = Buffer.concat([
        request.subarray(0, count),
        EVAL_CHECK,
        request.subarray(count + EVALSHA_CHECK.length),
      ]);
    }
    return redis.sendCommand(new RawCommand(payload)) as Promise<CheckReply>;
  }

  private versionKey(workspaceId: string): string {
    return this.versionKeyOf(workspaceId).key;
  }
  private versionKeyOf(workspaceId: string): { key: string; bytes: Buffer } {
    let v = this.versionKeys.get(workspaceId);
    if (v === undefined) {
      if (this.versionKeys.size > 10_000) this.versionKeys.clear();
      const key = this.key(this.tagOf(workspaceId, "*"), "v", "");
      v = { key, bytes: encodeBulk(key) };
      this.versionKeys.set(workspaceId, v);
    }
    return v;
  }

  static factory(options: RedisLimiterOptions): (context: LimiterContext) => RedisLimiter {
    return (context) => new RedisLimiter(context, options);
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  async restore(): Promise<number> {
    // The state is in Redis (and rebuilt there when missing); only the TTLs of active reservations
    // come into this process, for sweep() (another process may also expire them: finish() is once).
    const active = await this.store.listActiveReservations();
    for (const { workspaceId, reservation } of active)
      this.due.push({ at: reservation.expiresAt, workspaceId, id: reservation.id });
    // Wait (a bounded while) for the first connection, so the first checks are not answered degraded.
    if (this.redis.status !== "ready") {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5_000);
        this.redis.once("ready", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return active.length;
  }

  // ---- keys ------------------------------------------------------------------------------------

  private tagOf(workspaceId: string, subject: string): string {
    // The prefix is in a cluster's tag, so that deployments sharing a cluster spread too.
    return this.cluster ? `{${this.prefix}|${workspaceId}}` : `{${workspaceId}|${subject}}`;
  }
  private key(tag: string, kind: string, id: string): string {
    return `${this.prefix}:${tag}:${kind}:${id}`;
  }
  private marker(tag: string): string {
    return this.key(tag, "m", "");
  }
  /** The tag of a key made by marker(): read back exactly (ids may hold braces and colons). */
  private tagOfMarker(marker: string): string {
    return marker.slice(this.prefix.length + 1, marker.length - ":m:".length);
  }

  /**
   * Memoized per customer context and limit (the book's objects, replaced when definitions change)
   * while `at` stays in the window: a check then neither computes the period window (time zones) nor
   * hashes the counter's identity.
   */
  private family(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    customer: CustomerContext,
    at: number,
  ): FamilyRef {
    let memos = this.familyMemo.get(customer);
    if (memos === undefined) {
      memos = new Map();
      this.familyMemo.set(customer, memos);
    }
    const m = memos.get(limit);
    if (
      m &&
      m.meter === meter &&
      m.workspaceId === workspaceId &&
      m.ref.start <= at &&
      at < (m.ref.end ?? Infinity)
    )
      return m.ref;
    const ref = this.familyUncached(workspaceId, limit, meter, customer, at);
    if (memos.size > 64) memos.clear();
    memos.set(limit, { meter, workspaceId, ref });
    return ref;
  }

  private familyUncached(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    customer: CustomerContext,
    at: number,
  ): FamilyRef {
    const subject = limit.scope.kind === "workspace" ? "*" : customer.id;
    if (typeof limit.period === "object") {
      // The same buckets as the in-memory Limiter: 60 per window, whole seconds.
      const windowMs = limit.period.rolling_seconds * 1000;
      const bucketMs = Math.max(1000, Math.ceil(windowMs / 60 / 1000) * 1000);
      const identity = canonicalJson([
        [meter.id, meter.eventType, meter.aggregation, meter.value, meter.filter],
        limit.filter,
        limit.groupBy,
        limit.period,
      ]);
      const id = createHash("sha1").update(identity).digest("hex").slice(0, 24);
      return this.familyRef(this.tagOf(workspaceId, subject), id, {
        start: Number.NEGATIVE_INFINITY,
        end: null,
        rolling: { windowMs, bucketMs },
        from: Math.floor((at - windowMs) / bucketMs) * bucketMs,
        to: undefined,
      });
    }
    const zone = limit.scope.kind === "workspace" ? "UTC" : customer.timezone;
    const anchor = limit.scope.kind === "workspace" ? null : customer.billingAnchor;
    const w = periodWindow(limit.period, at, { timezone: zone, billingAnchor: anchor });
    const identity = canonicalJson([
      [meter.id, meter.eventType, meter.aggregation, meter.value, meter.filter],
      limit.filter,
      limit.groupBy,
      limit.period,
      w.start,
      w.end,
    ]);
    const id = createHash("sha1").update(identity).digest("hex").slice(0, 24);
    return this.familyRef(this.tagOf(workspaceId, subject), id, {
      start: w.start,
      end: w.end,
      rolling: null,
      from: limit.period === "all_time" ? undefined : w.start,
      to: w.end ?? undefined,
    });
  }

  private familyRef(
    tag: string,
    id: string,
    window: Pick<FamilyRef, "start" | "end" | "rolling" | "from" | "to">,
  ): FamilyRef {
    const marker = this.marker(tag);
    const counter = this.key(tag, "q", id);
    const holds = this.key(tag, "h", id);
    const rw = window.rolling;
    const rollingArg = rw ? `${rw.bucketMs}:${rw.windowMs}` : "";
    return {
      tag,
      marker,
      markerBytes: this.keyBytes(marker),
      counter,
      counterBytes: encodeBulk(counter),
      pending: this.key(tag, "p", id),
      holds,
      holdsBytes: encodeBulk(holds),
      seen: new Map(),
      rollingArg,
      rollingArgBytes: encodeBulk(rollingArg),
      ...window,
    };
  }

  /**
   * Memoized per limit object (the book's, replaced when definitions change) and subject. (A limit
   * object belongs to one workspace's book; its key depends on the subject only: a customer's
   * subject is the customer.)
   */
  private subjectOf(
    workspaceId: string,
    kind: "rate" | "cc",
    limit: RateLimit | ConcurrencyLimit,
    customerId: string,
    dimensions: Record<string, string>,
    config?: RateLimitConfig,
  ): SubjectRef | null {
    const subject =
      limit.subject === "key" ? dimensions.key : limit.subject === "customer" ? customerId : "*";
    if (subject === undefined) return null;
    let refs = this.subjectKeys.get(limit);
    if (refs === undefined) {
      refs = new Map();
      this.subjectKeys.set(limit, refs);
    }
    const known = refs.get(subject);
    if (known !== undefined && known.workspaceId === workspaceId) return known;
    if (refs.size > 10_000) refs.clear();
    const scope = limit.scope.kind === "workspace" ? "ws" : limit.scope.kind;
    // A rate state only means something under its config: the config is part of the key.
    const id = createHash("sha1")
      .update(canonicalJson([scope, limit.id, limit.subject, subject, config ?? null]))
      .digest("hex")
      .slice(0, 24);
    const tag = this.tagOf(workspaceId, limit.subject === "customer" ? customerId : "*");
    const key = this.key(tag, kind === "rate" ? "r" : "c", id);
    const marker = this.marker(tag);
    const ref: SubjectRef = {
      workspaceId,
      key,
      keyBytes: encodeBulk(key),
      marker,
      markerBytes: this.keyBytes(marker),
      seen: this.seenOf(key),
      seenEpoch: this.seenEpoch,
    };
    refs.set(subject, ref);
    return ref;
  }

  // ---- what was last seen ----------------------------------------------------------------------

  private seenOf(key: string): Seen {
    let s = this.seen.get(key);
    if (s === undefined) {
      s = { value: undefined, state: undefined, bytes: undefined, encoded: undefined };
      this.seen.set(key, s);
    }
    return s;
  }

  /** What was last seen of a subject's key. */
  private refSeen(ref: SubjectRef): Seen {
    if (ref.seenEpoch !== this.seenEpoch) {
      ref.seen = this.seenOf(ref.key);
      ref.seenEpoch = this.seenEpoch;
    }
    return ref.seen;
  }

  /** What was last seen of a quota counter's field and of its holds' field. */
  private quotaSeen(family: FamilyRef, groupKey: string): QuotaSeen {
    let q = family.seen.get(groupKey);
    if (q === undefined || q.epoch !== this.seenEpoch) {
      q = {
        used: this.seenOf(`${family.counter}\u0000${groupKey}`),
        held: this.seenOf(`${family.holds}\u0000${groupKey}`),
        epoch: this.seenEpoch,
      };
      if (family.seen.size >= 1_000) family.seen.clear();
      family.seen.set(groupKey, q);
    }
    return q;
  }

  private forget(key: string): void {
    const s = this.seen.get(key);
    if (s !== undefined) {
      s.value = undefined;
      s.state = undefined;
    }
  }

  /** Forgets everything seen, and drops the entries (references resolve theirs again). */
  private forgetAll(): void {
    for (const s of this.seen.values()) {
      s.value = undefined;
      s.state = undefined;
    }
    this.seen.clear();
    this.seenEpoch++;
  }

  private rateConfigOf(limit: RateLimit): {
    config: RateLimitConfig;
    ttl: number;
    ttlText: string;
    ttlBytes: Buffer;
  } {
    let c = this.rateConfigs.get(limit);
    if (c === undefined) {
      const config = rateConfig(limit);
      const ttl = rateTtlMs(config);
      c = { config, ttl, ttlText: String(ttl), ttlBytes: encodeBulk(String(ttl)) };
      this.rateConfigs.set(limit, c);
    }
    return c;
  }

  /** A customer's marker (its reservations are named after it) and the key of its checks' queue. */
  private customerKeys(workspaceId: string, customer: CustomerContext): CustomerKeys {
    const m = this.customerMarkers.get(customer);
    if (m !== undefined && m.workspaceId === workspaceId) return m;
    const marker = this.marker(this.tagOf(workspaceId, customer.id));
    const keys: CustomerKeys = {
      workspaceId,
      marker,
      markerBytes: this.keyBytes(marker),
      queue: `${workspaceId}\u0000${customer.id}`,
    };
    this.customerMarkers.set(customer, keys);
    return keys;
  }

  // ---- check -----------------------------------------------------------------------------------

  async check(
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance: BalanceGate | null = null,
  ): Promise<CheckResult> {
    const queue = this.customerKeys(workspaceId, customer).queue;
    for (let attempt = 0; attempt < 5; attempt++) {
      const result = await this.queues.run(queue, () =>
        this.checkOnce(workspaceId, customer, event, reserve, balance),
      );
      if (result !== "DEFS") return this.afterCheck(workspaceId, result, balance);
    }
    throw new TollgateError("UNAVAILABLE", "limit definitions keep changing; retry", {});
  }

  /** Stores the reservation an admitted check made (outside the subject's queue). */
  private afterCheck(
    workspaceId: string,
    result: CheckResult & { record?: ReservationRecord },
    balance: BalanceGate | null,
  ): CheckResult | Promise<CheckResult> {
    // (A check without a reservation has no record: its answer as it is, without another promise.)
    if (result.record === undefined) return result;
    return this.storeReservation(workspaceId, result, balance);
  }

  private async storeReservation(
    workspaceId: string,
    result: CheckResult & { record?: ReservationRecord },
    balance: BalanceGate | null,
  ): Promise<CheckResult> {
    const { record, ...answer } = result;
    if (!record) return answer;
    this.due.push({ at: record.expiresAt, workspaceId, id: record.id });
    if ((answer as { degraded?: boolean }).degraded) {
      await this.store.saveReservation(workspaceId, record);
      return answer;
    }
    try {
      await Promise.all([
        this.store.saveReservation(workspaceId, record),
        balance?.hold(record.id, record.createdAt, record.expiresAt),
      ]);
    } catch (error) {
      await this.finish(workspaceId, record).catch(() => {});
      throw error;
    }
    return answer;
  }

  private async checkOnce(
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance: BalanceGate | null,
  ): Promise<(CheckResult & { record?: ReservationRecord }) | "DEFS"> {
    let version = this.versions.get(workspaceId);
    if (version === undefined) {
      try {
        version = (await this.call(() => this.redis.get(this.versionKey(workspaceId)))) ?? "0";
        this.invalidateHere(workspaceId);
        this.versions.set(workspaceId, version);
      } catch {
        version = "?"; // Redis unreachable: the check below answers by fail_mode
      }
    }
    const book = this.book.peek(workspaceId) ?? (await this.book.get(workspaceId));
    const set = book.effective(customer.id, customer.plan);
    const now = this.clock.now();
    const quotas: QuotaItem[] = [];
    for (const limit of set.quotas) {
      const meter = book.meters.get(limit.meter);
      if (!meter || !quotaApplies(limit, meter, event)) continue;
      const group = limit.groupBy.length === 0 ? NO_GROUP : groupOf(limit, event.dimensions);
      quotas.push({
        limit,
        meter,
        family: this.family(workspaceId, limit, meter, customer, now),
        group,
        groupKey: limit.groupBy.length === 0 ? "{}" : canonicalJson(group),
        cost: meterValue(meter, event as UsageEvent),
      });
    }
    const rates: RateItem[] = [];
    for (const r of set.rates) {
      if (r.eventType !== null && r.eventType !== event.type) continue;
      const { config, ttlText, ttlBytes } = this.rateConfigOf(r);
      const ref = this.subjectOf(workspaceId, "rate", r, customer.id, event.dimensions, config);
      if (ref === null) continue;
      const cost = r.value ? (event.values[r.value] ?? 0) : 1;
      rates.push({ limit: r, config, ttl: ttlText, ttlBytes, ref, cost });
    }
    const slots: { limit: ConcurrencyLimit; ref: SubjectRef }[] = [];
    for (const c of set.concurrency) {
      if (c.eventType !== null && c.eventType !== event.type) continue;
      const ref = this.subjectOf(workspaceId, "cc", c, customer.id, event.dimensions);
      if (ref !== null) slots.push({ limit: c, ref });
    }

    // The script's keys and arguments are positional (see CHECK_LUA): the version, the markers of
    // every subject involved and the customer's expiry index first, then the items'.
    // The customer's marker first: its reservations (x keys, expiry index) are named after it.
    const own = this.customerKeys(workspaceId, customer);
    const markers = [own.marker];
    const markerBytes = [own.markerBytes];
    for (const q of quotas) addMarker(markers, markerBytes, q.family);
    for (const r of rates) addMarker(markers, markerBytes, r.ref);
    for (const s of slots) addMarker(markers, markerBytes, s.ref);
    const counts = scriptCounts(markers.length, rates.length, quotas.length, slots.length);
    const seenRates: Seen[] = rates.map((r) => this.refSeen(r.ref));
    const seenQuotas: QuotaSeen[] = quotas.map((q) => this.quotaSeen(q.family, q.groupKey));

    for (let attempt = 0; attempt < CHECK_ATTEMPTS_MAX; attempt++) {
      const t = this.clock.now();
      const outcomes: LimitOutcome[] = [];
      let code: ErrorCode | undefined;
      /** Per rate limit its expected state and its new one (the expected one unless admitted). */
      const rateArgs: string[] = [];
      /** The admitted states, as numbers (rateArgs holds them as text). */
      const rateStates: number[][] = [];
      for (let i = 0; i < rates.length; i++) {
        const r = rates[i]!;
        const seen = seenRates[i]!;
        const stored = seen.value ?? "";
        const state = seen.state ?? parseState(stored);
        const result = evaluateRate(r.config, state, { cost: r.cost }, t);
        const d = result.decision;
        const allowed = d.allowed || r.limit.enforcement !== "hard";
        if (!allowed) code ??= "RATE_LIMIT_EXCEEDED";
        outcomes.push({
          id: r.limit.id,
          kind: "rate",
          enforcement: r.limit.enforcement,
          allowed,
          exceeded: !d.allowed,
          limit: d.limit,
          remaining: d.remaining,
          resetAt: d.resetAt,
          retryAfterMs: d.allowed ? null : d.retryAfterMs === RETRY_NEVER ? null : d.retryAfterMs,
        });
        rateArgs.push(stored, result.state.join(","));
        rateStates.push(result.state);
      }
      const slotArgs: string[] = [];
      for (const { limit, ref } of slots) {
        const inUse = Number(this.refSeen(ref).value ?? "0");
        const first = this.seenOf(`${ref.key}\u0000first`).value ?? "";
        const exceeded = inUse >= limit.max;
        const allowed = !exceeded || limit.enforcement !== "hard";
        if (!allowed) code ??= "CONCURRENCY_LIMIT_EXCEEDED";
        outcomes.push({
          id: limit.id,
          kind: "concurrency",
          enforcement: limit.enforcement,
          allowed,
          exceeded,
          limit: limit.max,
          used: inUse,
          remaining: Math.max(0, limit.max - inUse - (reserve && !exceeded ? 1 : 0)),
          resetAt: null,
          retryAfterMs: exceeded && first !== "" ? Math.max(0, Number(first) - t) : null,
        });
        slotArgs.push(String(inUse), first);
      }
      for (let i = 0; i < quotas.length; i++) {
        const q = quotas[i]!;
        const seen = seenQuotas[i]!;
        const usedS = seen.used.value ?? noUsage(q.family);
        const heldS = seen.held.value ?? "0";
        const buckets = q.family.rolling ? parseBuckets(usedS) : null;
        const used = buckets ? buckets.reduce((sum, [, v]) => sum + v, 0) : Number(usedS);
        const held = Number(heldS);
        const d = decideQuota({ amount: q.limit.amount, used, held }, q.cost, q.limit.enforcement);
        if (!d.allowed) code ??= "LIMIT_EXCEEDED";
        outcomes.push({
          id: q.limit.id,
          kind: "quota",
          enforcement: q.limit.enforcement,
          allowed: d.allowed,
          exceeded: d.exceeded,
          limit: q.limit.amount,
          used,
          reserved: held,
          remaining: d.remaining,
          resetAt: q.family.rolling ? t + q.family.rolling.windowMs : q.family.end,
          retryAfterMs:
            !d.exceeded || q.limit.enforcement !== "hard"
              ? null
              : q.family.rolling
                ? rollingRetryAfter(buckets!, q.family.rolling, q, used, held, t)
                : q.family.end !== null
                  ? q.family.end - t
                  : null,
          ...(q.limit.groupBy.length ? { group: q.group } : {}),
        });
      }
      if (balance) {
        const b = balance.evaluate(t);
        if (!b.allowed) code ??= "INSUFFICIENT_BALANCE";
        outcomes.push(b);
      }
      const allowed = code === undefined;
      // Only a check that is admitted as a whole stores the new states.
      if (!allowed) for (let i = 0; i < rateArgs.length; i += 2) rateArgs[i + 1] = rateArgs[i]!;
      let record: ReservationRecord | undefined;
      /** Per hold the reservation adds: its hash (a key after the items'). */
      let holdKeys: string[] = [];
      let reservationArgs: string[] = [];
      if (allowed && reserve) {
        const holds = new Map<string, { hash: string; field: string; amount: number }>();
        for (const q of quotas)
          if (q.cost > 0)
            holds.set(`${q.family.holds}\u0002${q.groupKey}`, {
              hash: q.family.holds,
              field: q.groupKey,
              amount: q.cost,
            });
        record = {
          id: this.newId(),
          state: "active",
          customer: customer.id,
          event: { type: event.type, values: event.values, dimensions: event.dimensions },
          holds: [...holds].map(([key, h]) => ({ key, amount: h.amount })),
          leases: slots.map((s) => ({
            key: s.ref.key,
            expiresAt: t + Math.min(reserve.ttlMs, s.limit.leaseTtlMs),
          })),
          rateCharges: rates
            .filter((r) => r.limit.value !== null)
            .map((r) => ({ key: r.ref.key, value: r.limit.value!, cost: r.cost, config: r.config })),
          createdAt: t,
          expiresAt: t + reserve.ttlMs,
        };
        if (balance) record.balanceHold = true;
        // What the reservation holds, as FINISH_LUA and the expiry in CHECK_LUA read it back.
        const body: { h: [string, string, string][]; l: string[] } = { h: [], l: [] };
        const holdArgs: string[] = [];
        holdKeys = [];
        for (const h of holds.values()) {
          holdKeys.push(h.hash);
          holdArgs.push(h.field, String(h.amount));
          body.h.push([h.hash, h.field, String(h.amount)]);
        }
        for (const s of slots) body.l.push(s.ref.key);
        reservationArgs = [
          record.id,
          JSON.stringify(body),
          String(reserve.ttlMs + 60_000),
          String(record.expiresAt),
          String(holds.size),
          ...record.leases.map((l) => String(l.expiresAt)),
          ...holdArgs,
        ];
      }
      const keyCount = 1 + markers.length + rates.length + 2 * quotas.length + slots.length + holdKeys.length;
      let reply: CheckReply;
      try {
        // (Called directly, not through call(): no closure per check; any failure is answered below.)
        if (this.redis instanceof Redis) {
          // The request is encoded here, as bytes (see RawCommand and RespWriter), with the keys'
          // encodings kept by their references.
          const w = this.resp;
          w.begin(
            6 + keyCount + 3 * rates.length + 4 * quotas.length + slotArgs.length + reservationArgs.length,
          );
          w.bytes(EVALSHA_CHECK);
          w.number(keyCount);
          w.bytes(this.versionKeyOf(workspaceId).bytes);
          for (const b of markerBytes) w.bytes(b);
          for (const r of rates) w.bytes(r.ref.keyBytes);
          for (const q of quotas) {
            w.bytes(q.family.counterBytes);
            w.bytes(q.family.holdsBytes);
          }
          for (const s of slots) w.bytes(s.ref.keyBytes);
          for (const k of holdKeys) w.bytes(this.keyBytes(k));
          w.number(t);
          w.string(version);
          w.string(counts);
          for (let i = 0; i < rates.length; i++) {
            w.string(rateArgs[2 * i]!);
            w.string(rateArgs[2 * i + 1]!);
            w.bytes(rates[i]!.ttlBytes);
          }
          for (let i = 0; i < quotas.length; i++) {
            const q = quotas[i]!;
            const seen = seenQuotas[i]!;
            if (q.groupKey === "{}") w.bytes(NO_GROUP_BYTES);
            else w.string(q.groupKey);
            w.bytes(bulkOf(seen.used, noUsage(q.family)));
            w.bytes(bulkOf(seen.held, "0"));
            w.bytes(q.family.rollingArgBytes);
          }
          writeAll(w, slotArgs);
          writeAll(w, reservationArgs);
          const request = w.end();
          this.cork();
          this.sent++;
          try {
            reply = await this.sendCheck(request, false);
          } catch (error) {
            // The script is not in this Redis (flushed, or another server since): EVAL loads it.
            if (!(error instanceof Error) || !error.message.includes("NOSCRIPT")) throw error;
            reply = await this.sendCheck(request, true);
          } finally {
            this.sent--;
          }
        } else {
          const keys = [this.versionKey(workspaceId), ...markers];
          for (const r of rates) keys.push(r.ref.key);
          for (const q of quotas) keys.push(q.family.counter, q.family.holds);
          for (const s of slots) keys.push(s.ref.key);
          keys.push(...holdKeys);
          const args: string[] = [];
          for (let i = 0; i < rates.length; i++)
            args.push(rateArgs[2 * i]!, rateArgs[2 * i + 1]!, rates[i]!.ttl);
          for (let i = 0; i < quotas.length; i++) {
            const q = quotas[i]!;
            const seen = seenQuotas[i]!;
            args.push(
              q.groupKey,
              seen.used.value ?? noUsage(q.family),
              seen.held.value ?? "0",
              q.family.rollingArg,
            );
          }
          reply = await this.redis.tgCheck(
            keyCount,
            ...keys,
            t,
            version,
            counts,
            ...args,
            ...slotArgs,
            ...reservationArgs,
          );
        }
      } catch (error) {
        // Redis unreachable: each limit's fail_mode answers, and the answer says it is degraded.
        return this.degraded(workspaceId, customer, event, reserve, quotas, rates, slots, t, error);
      }
      const status = reply[0];
      if (status === "DEFS") {
        this.invalidateHere(workspaceId);
        this.versions.set(workspaceId, String(reply[1] ?? "0"));
        return "DEFS";
      }
      if (status === "REBUILD") {
        // Only the subjects whose marker is missing: a rebuild makes this process forget what it
        // saw of their keys (one more round trip for each of their next checks).
        await this.rebuild(reply.slice(1).map((i) => this.tagOfMarker(markers[Number(i) - 1]!)));
        continue;
      }
      if (status === "LOAD") {
        await Promise.all(
          reply.slice(1).map((i) => this.load(workspaceId, quotas[Number(i) - 1]!, customer)),
        );
        continue;
      }
      if (status === "STALE") {
        // Per rate limit its state, per quota used and held, per concurrency limit count and first expiry.
        let j = 1;
        for (const seen of seenRates) {
          seen.value = String(reply[j++] ?? "");
          seen.state = undefined;
        }
        for (const seen of seenQuotas) {
          seen.used.value = String(reply[j++]);
          seen.held.value = String(reply[j++]);
        }
        for (const s of slots) {
          this.refSeen(s.ref).value = String(reply[j++]);
          this.seenOf(`${s.ref.key}\u0000first`).value = String(reply[j++]);
        }
        continue;
      }
      // OK: what was applied is now the current state.
      if (reply.length > 1) this.markExpired(workspaceId, reply.slice(1).map(String));
      if (!allowed) return { allowed, code, limits: outcomes };
      for (let i = 0; i < rates.length; i++) {
        const seen = seenRates[i]!;
        seen.value = rateArgs[2 * i + 1]!;
        seen.state = rateStates[i]!;
      }
      if (!record) return { allowed, limits: outcomes };
      for (let i = 0; i < quotas.length; i++) {
        const held = seenQuotas[i]!.held;
        held.value = String(Number(held.value ?? "0") + quotas[i]!.cost);
      }
      for (const s of slots) {
        const inUse = this.refSeen(s.ref);
        inUse.value = String(Number(inUse.value ?? "0") + 1);
      }
      return {
        allowed,
        limits: outcomes,
        reservation: { id: record.id, expiresAt: record.expiresAt },
        record,
      };
    }
    throw new TollgateError("UNAVAILABLE", "too much contention on these limits; retry", {});
  }

  /**
   * The answer without Redis: a `closed` limit (the default) denies, an `open` one allows; nothing is
   * counted or held in Redis (an admitted reservation is stored with no holds: its usage counts when
   * committed). `degraded: true` says so (and the server counts it in /metrics).
   */
  private degraded(
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    quotas: QuotaItem[],
    rates: { limit: RateLimit }[],
    slots: { limit: ConcurrencyLimit }[],
    t: number,
    error: unknown,
  ): CheckResult & { record?: ReservationRecord; degraded: true } {
    const outcomes: LimitOutcome[] = [];
    let code: ErrorCode | undefined;
    const all: {
      limit: QuotaLimit | RateLimit | ConcurrencyLimit;
      kind: LimitOutcome["kind"];
      amount: number;
    }[] = [
      ...quotas.map((q) => ({ limit: q.limit, kind: "quota" as const, amount: q.limit.amount })),
      ...rates.map((r) => ({ limit: r.limit, kind: "rate" as const, amount: r.limit.limit })),
      ...slots.map((c) => ({ limit: c.limit, kind: "concurrency" as const, amount: c.limit.max })),
    ];
    for (const { limit, kind, amount } of all) {
      const allowed = limit.failMode === "open" || limit.enforcement !== "hard";
      if (!allowed) code ??= "UNAVAILABLE";
      outcomes.push({
        id: limit.id,
        kind,
        enforcement: limit.enforcement,
        allowed,
        exceeded: false,
        limit: amount,
        remaining: 0,
        resetAt: null,
        retryAfterMs: allowed ? null : 1000,
      });
    }
    if (code !== undefined) return { allowed: false, code, limits: outcomes, degraded: true };
    if (!reserve) return { allowed: true, limits: outcomes, degraded: true };
    void error;
    const record: ReservationRecord = {
      id: this.newId(),
      state: "active",
      customer: customer.id,
      event: { type: event.type, values: event.values, dimensions: event.dimensions },
      holds: [],
      leases: [],
      rateCharges: [],
      createdAt: t,
      expiresAt: t + reserve.ttlMs,
    };
    void workspaceId;
    return {
      allowed: true,
      limits: outcomes,
      reservation: { id: record.id, expiresAt: record.expiresAt },
      record,
      degraded: true,
    };
  }

  /** Loads one quota counter from the durable store (a snapshot scan), unless another process did. */
  private async load(workspaceId: string, q: QuotaItem, customer: CustomerContext): Promise<void> {
    const { limit, meter, family } = q;
    const totals: Record<string, number> = {};
    const rw = family.rolling;
    const add = (groupKey: string, amount: number, at: number) => {
      const field = rw ? `${groupKey}\u0003${Math.floor(at / rw.bucketMs) * rw.bucketMs}` : groupKey;
      totals[field] = (totals[field] ?? 0) + amount;
    };
    const { asOfSeq } = await this.store.scanUsage(
      workspaceId,
      {
        types: [meter.eventType],
        customer: limit.scope.kind === "workspace" ? undefined : customer.id,
        from: rw ? Math.floor((this.clock.now() - rw.windowMs) / rw.bucketMs) * rw.bucketMs : family.from,
        to: family.to,
      },
      (e) => {
        if (quotaApplies(limit, meter, e))
          add(canonicalJson(groupOf(limit, e.dimensions)), meterValue(meter, e), e.timestamp);
      },
      (r) => {
        if (!quotaApplies(limit, meter, r)) return;
        const amount =
          meter.aggregation === "count" ? r.events : meterValue(meter, r as unknown as UsageEvent);
        add(canonicalJson(groupOf(limit, r.dimensions)), amount, r.bucket);
      },
    );
    const ttl = rw
      ? rw.windowMs + COUNTER_GRACE_MS
      : family.end === null
        ? ALL_TIME_TTL_MS
        : Math.max(1, family.end - this.clock.now()) + COUNTER_GRACE_MS;
    await this.call(() =>
      this.redis.tgLoad(family.counter, family.pending, asOfSeq, ttl, JSON.stringify(totals)),
    );
  }

  /** Puts back the holds and slots of the stored active reservations of these subjects, once. */
  private async rebuild(missing: string[]): Promise<void> {
    const active = await this.store.listActiveReservations();
    const now = this.clock.now();
    // A workspace's own subject ("*": its workspace-wide counters and leases) is held by the
    // reservations of every customer of it, and each customer's rebuild puts back its own holds
    // there. So when the workspace's subject is missing (Redis flushed or replaced), every customer
    // of it with an active reservation is rebuilt now, not at its own next check: until then, a
    // workspace-wide hard cap would not see their holds and could admit past them. A subject already
    // rebuilt is skipped by the script (its marker is there), so nothing is put back twice.
    const wanted = new Set(missing);
    const tags = new Set(missing);
    /** The active reservations under each tag (grouped once: a rebuild may cover many tags). */
    const byTag = new Map<string, ReservationRecord[]>();
    for (const { workspaceId, reservation: r } of active) {
      if (r.expiresAt <= now) continue;
      const tag = this.tagOf(workspaceId, r.customer);
      if (wanted.has(this.tagOf(workspaceId, "*"))) tags.add(tag);
      const list = byTag.get(tag);
      if (list === undefined) byTag.set(tag, [r]);
      else list.push(r);
    }
    /** Keys outside the tags that the rebuild may write (holds on workspace-wide counters, leases). */
    const touched = new Set<string>();
    for (const tag of tags) {
      const body = { x: [] as unknown[], h: [] as unknown[], l: [] as unknown[], e: [] as unknown[] };
      for (const r of byTag.get(tag) ?? []) {
        const x = { h: [] as [string, string, string][], l: [] as string[] };
        for (const h of r.holds) {
          const [hash, field] = h.key.split("\u0002") as [string, string];
          x.h.push([hash, field, String(h.amount)]);
          body.h.push([hash, field, String(h.amount)]);
          touched.add(hash);
        }
        for (const l of r.leases) {
          x.l.push(l.key);
          touched.add(l.key);
          if (l.expiresAt > now) body.l.push([l.key, r.id, Math.min(l.expiresAt, r.expiresAt)]);
        }
        body.x.push([this.key(tag, "x", r.id), JSON.stringify(x), r.expiresAt - now + 60_000]);
        body.e.push([this.key(tag, "e", ""), r.id, r.expiresAt]);
      }
      await this.call(() => this.redis.tgRebuild(this.marker(tag), JSON.stringify(body)));
    }
    // Forget what this process last saw of the rebuilt keys only (a seen key is a Redis key, with
    // "\u0000field" for a hash field): clearing everything would send every other subject's next
    // check through a STALE round trip — each new customer's first check rebuilds its subject.
    // A key of a rebuilt subject starts with `prefix:{tag}:`; a tag ends with "}", so the key's
    // start is looked up at each "}:" in it (one or two), not compared with every tag.
    const starts = new Set<string>();
    for (const tag of tags) starts.add(`${this.prefix}:${tag}:`);
    for (const [key, seen] of this.seen) {
      const base = key.includes("\u0000") ? key.slice(0, key.indexOf("\u0000")) : key;
      if (touched.has(base) || startsWithOneOf(key, starts)) {
        seen.value = undefined;
        seen.state = undefined;
      }
    }
  }

  private markExpired(workspaceId: string, ids: string[]): void {
    for (const id of ids) {
      this.store
        .getReservation(workspaceId, id)
        .then((r) => {
          if (r?.state === "active")
            return this.store.saveReservation(workspaceId, { ...r, state: "expired" });
        })
        .catch(() => {});
    }
  }

  /** Frees a reservation's holds and slots in Redis (once, whoever gets there first). */
  private async finish(workspaceId: string, r: ReservationRecord): Promise<void> {
    const tag = this.tagOf(workspaceId, r.customer);
    await this.call(() => this.redis.tgFinish(this.key(tag, "x", r.id), this.key(tag, "e", ""), r.id));
    for (const h of r.holds) {
      const [hash, field] = h.key.split("\u0002") as [string, string];
      this.forget(`${hash}\u0000${field}`);
    }
    for (const l of r.leases) this.forget(l.key);
  }

  // ---- commit / release ------------------------------------------------------------------------

  async commit<T>(workspaceId: string, id: string, record: (r: ReservationRecord) => Promise<T>): Promise<T> {
    // Retries in this process wait for the first; across processes the event id (the reservation id
    // by default) makes the usage count once, and finish() frees the holds once.
    const inflight = this.committing.get(id);
    if (inflight) return (await inflight) as T;
    const work = this.commitOnce(workspaceId, id, record);
    this.committing.set(id, work);
    try {
      return await work;
    } finally {
      this.committing.delete(id);
    }
  }

  private async commitOnce<T>(
    workspaceId: string,
    id: string,
    record: (r: ReservationRecord) => Promise<T>,
  ): Promise<T> {
    const r = await this.getReservation(workspaceId, id);
    if (r.state === "committed") return r.result as T;
    if (r.state === "released") throw new TollgateError("CONFLICT", `reservation ${id} was released`, { id });
    // The usage is stored (and counted) before the hold goes: never counted by neither.
    const result = await record(r);
    await this.finish(workspaceId, r);
    await this.store.saveReservation(workspaceId, { ...r, state: "committed", result });
    return result;
  }

  async reconcileRates(r: ReservationRecord, actual: Record<string, number>): Promise<void> {
    for (const charge of r.rateCharges) {
      const delta = (actual[charge.value] ?? 0) - charge.cost;
      if (delta === 0) continue;
      const config = charge.config as RateLimitConfig;
      for (let attempt = 0; attempt < CHECK_ATTEMPTS_MAX; attempt++) {
        const seen = this.seenOf(charge.key);
        const stored = seen.value ?? "";
        const next = evaluateRate(
          config,
          parseState(stored),
          { cost: delta, force: true },
          this.clock.now(),
        ).state.join(",");
        const reply = await this.call(() => this.redis.tgCas(charge.key, stored, next, rateTtlMs(config)));
        seen.state = undefined;
        if (reply === 1) {
          seen.value = next;
          break;
        }
        seen.value = String(reply);
      }
    }
  }

  async release(workspaceId: string, id: string): Promise<ReservationRecord> {
    const r = await this.getReservation(workspaceId, id);
    if (r.state === "committed")
      throw new TollgateError("CONFLICT", `reservation ${id} was committed`, { id });
    if (r.state !== "active") return r;
    await this.finish(workspaceId, r);
    const released: ReservationRecord = { ...r, state: "released" };
    await this.store.saveReservation(workspaceId, released);
    return released;
  }

  async getReservation(workspaceId: string, id: string): Promise<ReservationRecord> {
    const r = await this.store.getReservation(workspaceId, id);
    if (!r) throw notFound("reservation", id);
    if (r.state === "active" && r.expiresAt <= this.clock.now()) {
      await this.finish(workspaceId, r);
      const expired: ReservationRecord = { ...r, state: "expired" };
      await this.store.saveReservation(workspaceId, expired);
      return expired;
    }
    return r;
  }

  // ---- recording usage -------------------------------------------------------------------------

  async prepareIncrements(
    workspaceId: string,
    events: UsageEvent[],
    customers: (id: string) => Promise<CustomerContext>,
  ): Promise<(inserted: number[], commitSeq: number) => void> {
    const book = await this.book.get(workspaceId);
    const contexts = new Map<string, CustomerContext>();
    for (const e of events)
      if (!contexts.has(e.customer)) contexts.set(e.customer, await customers(e.customer));
    return (inserted, commitSeq) => {
      // Sent in order on this connection before anything else this process sends next; a failure
      // leaves the counter to its next load (Redis down: it is rebuilt from the store on return).
      for (const i of inserted) {
        const e = events[i]!;
        const customer = contexts.get(e.customer)!;
        const counted = new Set<string>();
        for (const limit of book.effective(customer.id, customer.plan).quotas) {
          const meter = book.meters.get(limit.meter);
          if (!meter || !quotaApplies(limit, meter, e)) continue;
          const f = this.family(workspaceId, limit, meter, customer, e.timestamp);
          const group = canonicalJson(groupOf(limit, e.dimensions));
          const groupKey = f.rolling
            ? `${group}\u0003${Math.floor(e.timestamp / f.rolling.bucketMs) * f.rolling.bucketMs}`
            : group;
          const id = `${f.counter}\u0000${groupKey}`;
          if (counted.has(id)) continue;
          counted.add(id);
          const amount = meterValue(meter, e);
          this.redis
            .tgIncr(f.counter, f.pending, commitSeq, groupKey, amount, PENDING_TTL_MS)
            .catch(() => this.redis.del(f.counter).catch(() => {}));
        }
      }
    };
  }

  // ---- state for GET /customers/{id}/limits and alerts ------------------------------------------

  async counterUsage(
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
    groupKey: string,
  ): Promise<{ used: number; window: { start: number; end: number | null } | null }> {
    await this.sweep(this.clock.now());
    const f = this.family(workspaceId, limit, meter, customer, this.clock.now());
    const used = await this.counterField(workspaceId, limit, meter, customer, f, groupKey);
    return { used, window: { start: f.start, end: f.end } };
  }

  private async counterField(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    customer: CustomerContext,
    f: FamilyRef,
    groupKey: string,
  ): Promise<number> {
    if (!(await this.call(() => this.redis.exists(f.counter)))) {
      await this.load(workspaceId, { limit, meter, family: f, group: {}, groupKey, cost: 0 }, customer);
    }
    if (!f.rolling) return Number((await this.call(() => this.redis.hget(f.counter, groupKey))) ?? "0");
    const all = await this.call(() => this.redis.hgetall(f.counter));
    return rollingSums(all, f.rolling, this.clock.now()).get(groupKey) ?? 0;
  }

  async quotaUsage(
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
  ): Promise<
    { group: Record<string, string | null>; used: number; reserved: number; resetAt: number | null }[]
  > {
    await this.sweep(this.clock.now());
    const f = this.family(workspaceId, limit, meter, customer, this.clock.now());
    await this.counterField(workspaceId, limit, meter, customer, f, "{}");
    const [counts, holds] = await this.call(() =>
      Promise.all([this.redis.hgetall(f.counter), this.redis.hgetall(f.holds)]),
    );
    const now = this.clock.now();
    const sums = f.rolling
      ? rollingSums(counts, f.rolling, now)
      : new Map(Object.entries(counts).map(([g, v]) => [g, Number(v)]));
    sums.delete("_asof");
    const groups = new Set<string>([...sums.keys(), ...Object.keys(holds)]);
    if (groups.size === 0) groups.add(canonicalJson(groupOf(limit, {})));
    return [...groups].sort().map((g) => ({
      group: JSON.parse(g) as Record<string, string | null>,
      used: sums.get(g) ?? 0,
      reserved: Number(holds[g] ?? "0"),
      resetAt: f.rolling ? now + f.rolling.windowMs : f.end,
    }));
  }

  async concurrencyInUse(workspaceId: string, limit: ConcurrencyLimit, customerId: string): Promise<number> {
    const key = this.subjectOf(workspaceId, "cc", limit, customerId, {})?.key ?? null;
    if (key === null) return 0;
    return this.call(() => this.redis.zcount(key, `(${this.clock.now()}`, "+inf"));
  }

  async rateState(
    workspaceId: string,
    limit: RateLimit,
    customerId: string,
  ): Promise<RateLimitDecision | null> {
    const { config } = this.rateConfigOf(limit);
    const key = this.subjectOf(workspaceId, "rate", limit, customerId, {}, config)?.key ?? null;
    if (key === null) return null;
    const stored = (await this.call(() => this.redis.get(key))) ?? "";
    return evaluateRate(config, parseState(stored), { cost: 0 }, this.clock.now()).decision;
  }

  async forgetFamilies(workspaceId: string): Promise<void> {
    // Counters reload from the store on their next check.
    const match = this.cluster
      ? `${this.prefix}:${this.tagOf(workspaceId, "*")}:q:*`
      : `${this.prefix}:{${workspaceId}|*}:q:*`;
    const nodes = this.redis instanceof Cluster ? this.redis.nodes("master") : [this.redis];
    for (const node of nodes) {
      for await (const batch of node.scanStream({ match, count: 500 }) as AsyncIterable<string[]>)
        if (batch.length) await node.del(...batch);
    }
    this.forgetAll();
  }

  connected(): boolean {
    return this.redis.status === "ready";
  }

  /**
   * Expires the reservations of this process (and those active at its start) whose TTL has passed,
   * so that a client that vanished gives its holds and slots back without another check of its
   * subject (each check also expires its subjects' due reservations, in the script).
   */
  async sweep(now: number): Promise<void> {
    if (this.seen.size > 100_000) this.forgetAll();
    while (this.due.size > 0 && this.due.peek()!.at <= now) {
      const { workspaceId, id } = this.due.pop()!;
      // Expires it if still active (Redis unreachable: it stays due, for the subject's next check).
      await this.getReservation(workspaceId, id).catch(() => {});
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new TollgateError("UNAVAILABLE", "the limit store (Redis) is unreachable right now", {
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

/** The check script's call by hash: the command name and the script's SHA-1, as RESP. */
const EVALSHA_CHECK = encodeBulks(["evalsha", createHash("sha1").update(CHECK_LUA).digest("hex")]);
/** The same by EVAL (which also loads the script). */
const EVAL_CHECK = encodeBulks(["eval", CHECK_LUA]);
const RAW_OPTIONS = { replyEncoding: "utf8" as const };

function encodeBulks(strings: string[]): Buffer {
  return Buffer.concat(strings.map(encodeBulk));
}

/**
 * A request already encoded in RESP (the check script's call): ioredis queues it, writes it and
 * hands it its reply, but neither copies, flattens nor encodes its arguments one by one.
 */
class RawCommand extends Command {
  private readonly payload: Buffer;
  constructor(payload: Buffer) {
    super("evalsha", [], RAW_OPTIONS);
    this.payload = payload;
  }
  override toWritable(_socket: object): Buffer {
    return this.payload;
  }
}

/** A subject's marker, unless the check's list has it already (the two lists stay parallel). */
function addMarker(
  markers: string[],
  bytes: Buffer[],
  subject: { marker: string; markerBytes: Buffer },
): void {
  if (markers.includes(subject.marker)) return;
  markers.push(subject.marker);
  bytes.push(subject.markerBytes);
}

/** A counter's usage when nothing is known of it: no buckets for a rolling one, else 0. */
function noUsage(family: FamilyRef): string {
  return family.rolling ? "" : "0";
}

/** The RESP encoding of what was last seen (`fallback` when nothing), kept while it is the same. */
function bulkOf(seen: Seen, fallback: string): Buffer {
  const value = seen.value ?? fallback;
  if (seen.encoded !== value || seen.bytes === undefined) {
    seen.bytes = encodeBulk(value);
    seen.encoded = value;
  }
  return seen.bytes;
}

const NO_GROUP_BYTES = encodeBulk("{}");

function writeAll(w: RespWriter, args: (string | number)[]): void {
  for (const a of args) w.string(typeof a === "number" ? String(a) : a);
}

/** CHECK_LUA's counts argument: 3 digits each. */
function scriptCounts(...counts: number[]): string {
  let s = "";
  for (const n of counts) {
    if (n > 999) throw new TollgateError("INVALID_REQUEST", "too many limits apply to one check", { n });
    s += String(n).padStart(3, "0");
  }
  return s;
}

function parseBuckets(s: string): [number, number][] {
  if (s === "") return [];
  return s.split(";").map((p) => {
    const [b, v] = p.split(":");
    return [Number(b), Number(v)] as [number, number];
  });
}

/** The earliest instant at which enough old buckets have aged out for the request to fit (as core's Limiter). */
function rollingRetryAfter(
  buckets: [number, number][],
  r: { windowMs: number; bucketMs: number },
  q: { cost: number; limit: QuotaLimit },
  used: number,
  held: number,
  now: number,
): number | null {
  let left = used;
  for (const [start, amount] of buckets) {
    left -= amount;
    const fits = q.cost === 0 ? left + held < q.limit.amount : left + held + q.cost <= q.limit.amount;
    if (fits) return Math.max(0, start + r.bucketMs + r.windowMs - now);
  }
  return null;
}

/** Usage per group of a rolling counter at `now`: buckets that overlap (now - window, now]. */
function rollingSums(
  fields: Record<string, string>,
  r: { windowMs: number; bucketMs: number },
  now: number,
): Map<string, number> {
  const sums = new Map<string, number>();
  for (const [field, v] of Object.entries(fields)) {
    const i = field.lastIndexOf("\u0003");
    if (i < 0) continue;
    const bucket = Number(field.slice(i + 1));
    if (bucket + r.bucketMs <= now - r.windowMs) continue;
    const g = field.slice(0, i);
    sums.set(g, (sums.get(g) ?? 0) + Number(v));
  }
  return sums;
}

/** Whether the key begins with one of these starts, each ending in "}:". */
function startsWithOneOf(key: string, starts: ReadonlySet<string>): boolean {
  for (let i = key.indexOf("}:"); i !== -1; i = key.indexOf("}:", i + 1))
    if (starts.has(key.slice(0, i + 2))) return true;
  return false;
}

function parseState(s: string): number[] | undefined {
  return s === "" ? undefined : s.split(",").map(Number);
}

/** How long an idle rate state is kept: long enough that dropping it changes no decision. */
function rateTtlMs(config: RateLimitConfig): number {
  const burst = config.burst ?? config.limit;
  return config.windowMs * (Math.ceil(burst / config.limit) + 2) + 1000;
}

function rateConfig(limit: RateLimit): RateLimitConfig {
  return {
    algorithm: limit.algorithm,
    limit: limit.limit,
    windowMs: limit.windowMs,
    ...(limit.burst !== null ? { burst: limit.burst } : {}),
  };
}

function quotaApplies(
  limit: QuotaLimit,
  meter: MeterDef,
  event: Pick<UsageEvent, "type" | "dimensions">,
): boolean {
  if (!meterMatches(meter, event as UsageEvent)) return false;
  for (const k in limit.filter) if (event.dimensions[k] !== limit.filter[k]) return false;
  return true;
}

/** The group of a limit without group_by (never written to). */
const NO_GROUP: Record<string, string | null> = Object.freeze({});

function groupOf(limit: QuotaLimit, dimensions: Record<string, string>): Record<string, string | null> {
  const g: Record<string, string | null> = {};
  for (const d of limit.groupBy) g[d] = dimensions[d] ?? null;
  return g;
}
