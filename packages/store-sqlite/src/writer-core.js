// The grouped writes of the embedded store (event appends, reservations), committed in one
// transaction per flush. Plain JavaScript so that it loads in a worker thread without a TypeScript
// loader; the same code runs inline for ":memory:" databases.
import { prepareRollupStatements, RollupBatch, registerRollupFunctions } from "./rollups.js";

/** Bytes per event in an events write's `fps`: the first 16 of its fingerprint's SHA-256 (128 bits). */
export const FP_BYTES = 16;

/** Returns flush(writes) → { results, commitSeq } bound to the connection. */
export function createWriter(db) {
  const evInsert = db.prepare(
    `INSERT INTO events (ws, id, type, customer, ts, vals, dims, fp, price_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (ws, id) DO NOTHING`,
  );
  const ledgerInsert = db.prepare(
    `INSERT INTO ledger_entries (ws, customer, idempotency_key, kind, at, body) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT DO NOTHING`,
  );
  const evFp = db.prepare("SELECT fp FROM events WHERE ws = ? AND id = ?").pluck();
  const maxSeq = db.prepare("SELECT coalesce(max(seq), 0) FROM events").pluck();
  const rsvPut = db.prepare(
    `INSERT INTO reservations (ws, id, state, expires_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (ws, id) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at,
     updated_at = excluded.updated_at, body = excluded.body`,
  );

  registerRollupFunctions(db);
  const rollupStmts = prepareRollupStatements(db);
  // Rollups of the events this flush newly inserts, written in the same transaction.
  const rollups = new RollupBatch();

  class Conflict extends Error {
    constructor(index, eventId) {
      super("conflict");
      this.index = index;
      this.eventId = eventId;
    }
  }

  // One request's events, all or nothing: a nested transaction is a savepoint.
  const appendSavepoint = db.transaction((w) => {
    // w.rows: flat [id, type, customer, ts, vals, dims] × n; w.fps: the digests, FP_BYTES each
    const inserted = [];
    let duplicates = 0;
    const r = w.rows;
    const priceRows = w.priceRows;
    // A worker receives a plain Uint8Array; Buffer's view of the same memory has .equals.
    const fps = Buffer.from(w.fps.buffer, w.fps.byteOffset, w.fps.byteLength);
    for (let i = 0, n = 0; i < r.length; i += 6, n++) {
      const fp = fps.subarray(n * FP_BYTES, (n + 1) * FP_BYTES);
      const priceRow = priceRows ? priceRows[n] : null;
      if (
        evInsert.run(w.ws, r[i], r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5], fp, priceRow).changes === 1
      ) {
        inserted.push(n);
        continue;
      }
      if (!evFp.get(w.ws, r[i]).equals(fp)) throw new Conflict(n, r[i]);
      duplicates++;
    }
    // Ledger entries that come with events (debit rules' usage) are stored only for new events.
    const l = w.ledger;
    if (l) {
      const isNew = new Set(inserted);
      for (let i = 0; i < l.length; i += 6) {
        if (isNew.has(l[i])) ledgerInsert.run(w.ws, l[i + 1], l[i + 2], l[i + 3], l[i + 4], l[i + 5]);
      }
    }
    return { ok: true, accepted: inserted.length, duplicates, inserted };
  });

  function writeOne(w) {
    if (w.kind === "reservation") {
      rsvPut.run(w.ws, w.id, w.state, w.expiresAt, w.updatedAt, w.body);
      return null;
    }
    if (w.kind === "ledger") {
      // flat [customer, key, kind, at, body] × n; a key already stored is a retry: skipped.
      const l = w.rows;
      for (let i = 0; i < l.length; i += 5)
        ledgerInsert.run(w.ws, l[i], l[i + 1], l[i + 2], l[i + 3], l[i + 4]);
      return null;
    }
    try {
      const result = appendSavepoint(w);
      // Only events newly stored, and only once their request's savepoint held: a duplicate or a
      // request rolled back by a conflict adds nothing.
      const r = w.rows;
      for (const n of result.inserted) {
        const i = n * 6;
        rollups.add(w.ws, r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5]);
      }
      return result;
    } catch (error) {
      if (error instanceof Conflict) return { ok: false, conflictIndex: error.index, id: error.eventId };
      throw error;
    }
  }

  const flush = db.transaction((writes) => {
    rollups.clear(); // left over only if an earlier flush failed and rolled back
    const results = writes.map(writeOne);
    rollups.write(rollupStmts);
    return { results, commitSeq: maxSeq.get() };
  });
  return flush;
}
