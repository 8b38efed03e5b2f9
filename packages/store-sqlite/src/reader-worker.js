// The embedded store's reader thread for simulations (Store.streamEvents): it reads the pages of
// pageEvents on a read-only connection of its own, from the snapshot the main thread fixed, and
// sends them encoded (page-codec.js) a few pages ahead of the replay, which waits for none of it.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { createPageEncoder } from "./page-codec.js";
import { pageQuery } from "./page-query.js";

const { path, ws, asOfSeq, scan, pageSize, ahead } = workerData;
const db = new Database(path, { readonly: true, fileMustExist: true });
db.pragma("busy_timeout = 5000");
const encoder = createPageEncoder();
const statements = new Map();
let credit = ahead;
let after;
let done = false;

function readPage() {
  const { sql, params } = pageQuery(ws, asOfSeq, after === undefined ? scan : { ...scan, after }, pageSize);
  let stmt = statements.get(sql);
  if (!stmt) {
    stmt = db.prepare(sql).raw(true);
    statements.set(sql, stmt);
  }
  return stmt.all(...params);
}

function pump() {
  try {
    while (credit > 0 && !done) {
      const rows = readPage();
      credit--;
      if (rows.length === 0) {
        done = true;
        parentPort.postMessage({ type: "end" });
        db.close();
        return;
      }
      const last = rows[rows.length - 1];
      after = { timestamp: last[4], seq: last[0] };
      const { message, transfer } = encoder.encode(rows, asOfSeq);
      parentPort.postMessage({ type: "page", page: message }, transfer);
    }
  } catch (error) {
    done = true;
    parentPort.postMessage({ type: "failed", message: String(error?.message ?? error) });
  }
}

parentPort.on("message", (msg) => {
  if (msg.type === "more") {
    credit += msg.pages ?? 1;
    pump();
  }
});
pump();
