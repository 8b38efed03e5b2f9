// The keyset page of Store.pageEvents as SQL: shared by the main thread's pageEvents and the reader
// thread that streams pages for simulations (reader-worker.js), so that both read the same events.

/** The columns an event is read back from (EventRow), in the order scans select them. */
export const EVENT_COLUMNS = "seq, id, type, customer, ts, vals, dims, price_row";

/**
 * The WHERE terms of an event scan (joined with AND) and their parameters, in the same order: the
 * workspace, then each filter that is set. Shared by every scan of the events table (pageEvents and
 * its reader thread, scanEvents, the reports' raw tail) so that they select the same events.
 *
 * @param {number} ws workspace seq
 * @param {{ customer?: string, customers?: string[], from?: number, to?: number, types?: string[] }} f
 *   `from` inclusive, `to` exclusive, on the event time
 * @returns {{ where: string[], params: unknown[] }}
 */
export function eventFilter(ws, f) {
  const where = ["ws = ?"];
  const params = [ws];
  if (f.customer !== undefined) {
    where.push("customer = ?");
    params.push(f.customer);
  }
  if (f.customers !== undefined) {
    where.push(`customer IN (${f.customers.map(() => "?").join(",")})`);
    params.push(...f.customers);
  }
  if (f.from !== undefined) {
    where.push("ts >= ?");
    params.push(f.from);
  }
  if (f.to !== undefined) {
    where.push("ts < ?");
    params.push(f.to);
  }
  if (f.types !== undefined) {
    where.push(`type IN (${f.types.map(() => "?").join(",")})`);
    params.push(...f.types);
  }
  return { where, params };
}

/**
 * @param {number} ws workspace seq
 * @param {number} asOfSeq the snapshot: only events of commits up to it
 * @param {import("@tollgate/core").EventPageScan} scan
 * @param {number} limit
 */
export function pageQuery(ws, asOfSeq, scan, limit) {
  // The cursor's timestamp is the index range's lower bound: SQLite does not seek on the row
  // value below (a page would scan from `from` every time).
  const from =
    scan.after === undefined ? scan.from : Math.max(scan.from ?? scan.after.timestamp, scan.after.timestamp);
  const { where, params } = eventFilter(ws, {
    customer: scan.customer,
    customers: scan.customers,
    from,
    to: scan.to,
    types: scan.types,
  });
  where.push("seq <= ?");
  params.push(asOfSeq);
  if (scan.after !== undefined) {
    where.push("(ts, seq) > (?, ?)");
    params.push(scan.after.timestamp, scan.after.seq);
  }
  params.push(limit);
  const sql = `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where.join(" AND ")} ORDER BY ts, seq LIMIT ?`;
  return { sql, params };
}
