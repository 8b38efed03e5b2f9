// The keyset page of Store.pageEvents as SQL: shared by the main thread's pageEvents and the reader
// thread that streams pages for simulations (reader-worker.js), so that both read the same events.

/**
 * @param {number} ws workspace seq
 * @param {number} asOfSeq the snapshot: only events of commits up to it
 * @param {import("@tollgate/core").EventPageScan} scan
 * @param {number} limit
 */
export function pageQuery(ws, asOfSeq, scan, limit) {
  const where = ["ws = ?", "seq <= ?"];
  const params = [ws, asOfSeq];
  if (scan.customer !== undefined) {
    where.push("customer = ?");
    params.push(scan.customer);
  }
  if (scan.customers !== undefined) {
    where.push(`customer IN (${scan.customers.map(() => "?").join(",")})`);
    params.push(...scan.customers);
  }
  // The cursor's timestamp is the index range's lower bound: SQLite does not seek on the row
  // value below (a page would scan from `from` every time).
  const lower =
    scan.after === undefined ? scan.from : Math.max(scan.from ?? scan.after.timestamp, scan.after.timestamp);
  if (lower !== undefined) {
    where.push("ts >= ?");
    params.push(lower);
  }
  if (scan.to !== undefined) {
    where.push("ts < ?");
    params.push(scan.to);
  }
  if (scan.types !== undefined) {
    where.push(`type IN (${scan.types.map(() => "?").join(",")})`);
    params.push(...scan.types);
  }
  if (scan.after !== undefined) {
    where.push("(ts, seq) > (?, ?)");
    params.push(scan.after.timestamp, scan.after.seq);
  }
  params.push(limit);
  const sql = `SELECT seq, id, type, customer, ts, vals, dims, price_row FROM events WHERE ${where.join(" AND ")} ORDER BY ts, seq LIMIT ?`;
  return { sql, params };
}
