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

// Writes arrive one message each, as the main thread makes them, and queue here. A group is
// committed when the main thread has taken the previous group's answer (its "ack", sent first thing
// when the answer arrives): while it is busy (parsing and validating requests) the queue grows into
// a larger group, and a larger group costs less per event (the same rollup rows and index pages are
// written once for all of it); when it is idle, the next group starts at once. A write that finds
// the writer idle is committed right away.
let queue = [];
let scheduled = false;
let unacked = false;

function maybeFlush() {
  if (scheduled || unacked || queue.length === 0) return;
  scheduled = true;
  setImmediate(flushQueue);
}

function flushQueue() {
  scheduled = false;
  const group = queue;
  queue = [];
  if (group.length === 0) return;
  if (process.env.TOLLGATE_DEBUG_GROUP_COMMIT) process.stderr.write(`group commit: ${group.length} writes\n`);
  const ids = new Array(group.length);
  const writes = new Array(group.length);
  for (let i = 0; i < group.length; i++) {
    ids[i] = group[i].id;
    writes[i] = group[i].write;
  }
  unacked = true;
  try {
    const { results, commitSeq } = flush(writes);
    parentPort.postMessage({ type: "flushed", ids, results, commitSeq });
  } catch (error) {
    parentPort.postMessage({ type: "failed", ids, message: String(error?.message ?? error) });
  }
}

parentPort.on("message", (msg) => {
  if (msg.type === "write") {
    queue.push(msg);
    maybeFlush();
  } else if (msg.type === "ack") {
    unacked = false;
    maybeFlush();
  } else if (msg.type === "close") {
    flushQueue();
    db.close();
    parentPort.postMessage({ type: "closed" });
  }
});
