import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  url: string;
  adminKey: string;
  dataDir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `tollgate serve` in its own process over a fresh data folder. */
export async function spawnServer(extraArgs: string[] = []): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-bench-"));
  const port = await freePort();
  const adminKey = "tg_bench_admin_key_0123456789";
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : []),
      // BENCH_NODE_FLAGS: extra node flags for the server (e.g. "--max-semi-space-size=32"), to compare.
      ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(" ") : []),
      join(ROOT, "packages/cli/bin/tollgate.js"),
      "serve",
      "--port",
      String(port),
      "--data",
      dataDir,
      "--log-level",
      "warn",
      ...extraArgs,
    ],
    { env: { ...process.env, TOLLGATE_ADMIN_KEY: adminKey }, stdio: ["ignore", "ignore", "inherit"] },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    adminKey,
    dataDir,
    child,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/**
 * CPU time (user + system) of a process so far, all its threads or one (`thread`: a tid), in
 * seconds; NaN where /proc is not there.
 */
const TICKS_PER_SECOND = 100; // USER_HZ on Linux
export function cpuSeconds(pid: number | undefined, thread?: number): number {
  // /proc/<pid>/task/<tid>/stat: one thread's own (the main thread's tid is the pid).
  const file = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
  if (pid === undefined || !existsSync(file)) return Number.NaN;
  // Fields after the command name (which may hold spaces): state is 3rd, utime 14th, stime 15th.
  const stat = readFileSync(file, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds so far of each thread of a process, by tid (empty where /proc is not there). */
export function threadCpuSeconds(pid: number | undefined): Map<number, number> {
  const out = new Map<number, number>();
  if (pid === undefined || !existsSync(`/proc/${pid}/task`)) return out;
  for (const tid of readdirSync(`/proc/${pid}/task`)) out.set(Number(tid), cpuSeconds(pid, Number(tid)));
  return out;
}
