// The grouped writes of the embedded store (event appends, reservations), committed in one
// transaction per flush. Plain JavaScript so that it loads in a worker thread without a TypeScript
// loader; the same code runs inline for ":memory:" databases.
import { createHash } from "node:crypto";

/** Returns flush(writes) → { results, commitSeq } bound to the connection. */
export function createWriter(db) {
  const evInsert = db.prepare(
    `INSERT INTO events (ws, id, type, customer, ts, vals, dims, fp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (ws, id) DO NOTHING`,
  );
  const evFp = db.prepare("SELECT fp FROM events WHERE ws = ? AND id = ?").pluck();
  const maxSeq = db.prepare("SELECT coalesce(max(seq), 0) FROM events").pluck();
  const rsvPut = db.prepare(
    `INSERT INTO reservations (ws, id, state, expires_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (ws, id) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at,
     updated_at = excluded.updated_at, body = excluded.body`,
  );

  const fingerprintHash = (fp) => createHash("sha256").update(fp).digest().subarray(0, 16);

  class Conflict extends Error {
    constructor(index, eventId) {
      super("conflict");
      this.index = index;
      this.eventId = eventId;
    }
  }

  // One request's events, all or nothing: a nested transaction is a savepoint.
  const appendSavepoint = db.transaction((w) => {
    // w.rows: flat [id, type, customer, ts, vals, dims, fingerprint] × n
    const inserted = [];
    let duplicates = 0;
    const r = w.rows;
    for (let i = 0, n = 0; i < r.length; i += 7, n++) {
      const fp = fingerprintHash(r[i + 6]);
      if (evInsert.run(w.ws, r[i], r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5], fp).changes === 1) {
        inserted.push(n);
        continue;
      }
      if (!evFp.get(w.ws, r[i]).equals(fp)) throw new Conflict(n, r[i]);
      duplicates++;
    }
    return { ok: true, accepted: inserted.length, duplicates, inserted };
  });

  function writeOne(w) {
    if (w.kind === "reservation") {
      rsvPut.run(w.ws, w.id, w.state, w.expiresAt, w.updatedAt, w.body);
      return null;
    }
    try {
      return appendSavepoint(w);
    } catch (error) {
      if (error instanceof Conflict) return { ok: false, conflictIndex: error.index, id: error.eventId };
      throw error;
    }
  }

  const flush = db.transaction((writes) => {
    const results = writes.map(writeOne);
    return { results, commitSeq: maxSeq.get() };
  });
  return flush;
}
