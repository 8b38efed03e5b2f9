// The embedded store's writer thread: it owns every grouped write and commits while the main
// thread goes on parsing and validating requests.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { createWriter } from "./writer-core.js";

const db = new Database(workerData.path);
db.pragma("journal_mode = WAL");
db.pragma(`synchronous = ${workerData.synchronous.toUpperCase()}`);
db.pragma("busy_timeout = 5000");
const flush = createWriter(db);

parentPort.on("message", (msg) => {
  if (msg.type === "close") {
    db.close();
    parentPort.postMessage({ type: "closed" });
    return;
  }
  try {
    const { results, commitSeq } = flush(msg.writes);
    parentPort.postMessage({ type: "flushed", id: msg.id, results, commitSeq });
  } catch (error) {
    parentPort.postMessage({ type: "failed", id: msg.id, message: String(error?.message ?? error) });
  }
});
