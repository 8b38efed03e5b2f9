import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Helpers for tests that run `tollgate` as a real child process (test/e2e). */

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = join(REPO_ROOT, "packages/cli/bin/tollgate.js");

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

export function tempDir(prefix = "tollgate-e2e-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** The test process's environment without any TOLLGATE_* variable, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TOLLGATE_")) env[k] = v;
  return { ...env, ...extra };
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited and its output is read. */
  exited: Promise<Exit>;
  signal(sig: NodeJS.Signals): void;
}

/**
 * Spawns a command in its own process group (so `npx` and whatever it starts can be ended together),
 * collecting its output.
 */
export function start(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Proc {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: opts.env ?? cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  live.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    err += s;
  });
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  exited.catch(() => {});
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    signal(sig) {
      process.kill(child.pid!, sig);
    },
  };
}

/** Runs a one-shot command to its end (bounded) and returns its output. */
export async function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  const p = start(command, args, opts);
  const timer = setTimeout(() => killGroup(p.child), opts.timeoutMs ?? 20_000);
  try {
    const exit = await p.exited;
    return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

export interface ServeProc extends Proc {
  url: string;
}

/**
 * Starts `tollgate serve` and waits until it printed where it listens and `/health` answers 200.
 * `--port 0` (the default here) lets the OS pick the port; the URL is read from the banner.
 */
export async function serve(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; command?: string[]; timeoutMs?: number } = {},
): Promise<ServeProc> {
  const [cmd, ...pre] = opts.command ?? [process.execPath, BIN];
  const all = [...pre, "serve", ...args];
  if (!args.includes("--port")) all.push("--port", "0");
  if (!args.includes("--log-level")) all.push("--log-level", "warn");
  const p = start(cmd!, all, opts);
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let exited: Exit | undefined;
  p.exited.then((e) => {
    exited = e;
  });
  const fail = (why: string) =>
    new Error(`tollgate serve ${why}\n--- stdout\n${p.stdout()}\n--- stderr\n${p.stderr()}`);
  let url: string | undefined;
  while (!url) {
    const m = /Tollgate listening on (http:\/\/\S+)/.exec(p.stdout());
    if (m) url = m[1]!;
    else {
      if (exited) throw fail(`exited early (${exited.code ?? exited.signal})`);
      if (Date.now() > deadline) {
        killGroup(p.child);
        throw fail("did not start in time");
      }
      await sleep(25);
    }
  }
  for (;;) {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) break;
    } catch {
      // not yet
    }
    if (exited) throw fail(`exited early (${exited.code ?? exited.signal})`);
    if (Date.now() > deadline) {
      killGroup(p.child);
      throw fail("never answered /health");
    }
    await sleep(25);
  }
  return { ...p, url };
}

/** SIGTERM and wait for the exit (SIGKILL after `graceMs`). */
export async function stop(p: Proc, graceMs = 12_000): Promise<Exit> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
  p.signal("SIGTERM");
  const timer = setTimeout(() => killGroup(p.child), graceMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // gone already
  }
}

/** Ends every child these helpers started and still running, and removes the temp folders. */
export async function cleanup(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    waits.push(new Promise((resolve) => child.once("close", resolve)));
    killGroup(child);
  }
  await Promise.race([Promise.all(waits), sleep(5_000)]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
