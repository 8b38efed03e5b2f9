import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../e2e/proc.js";

/**
 * A real Redis Cluster of three masters (no replicas) on free loopback ports, in a temp folder:
 * redis-server with cluster-enabled, joined by `redis-cli --cluster create`. For tests only.
 */
export interface RedisCluster {
  /** "redis://127.0.0.1:p1,redis://127.0.0.1:p2,…" as `tollgate serve --redis … --redis-cluster` takes it. */
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

const cli = (port: number, ...args: string[]) =>
  execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8" });

export async function startRedisCluster(nodes = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-redis-cluster-"));
  // Cluster bus ports are port + 10000: pick ports whose bus port is free too.
  const ports: number[] = [];
  while (ports.length < nodes) {
    const p = await freePort();
    if (p + 10_000 < 65_536 && !ports.includes(p)) ports.push(p);
  }
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      { stdio: "ignore" },
    ),
  );
  const stop = async () => {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : null)),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      for (let i = 0; ; i++) {
        try {
          if (cli(port, "ping").trim() === "PONG") break;
        } catch {}
        if (i > 100) throw new Error(`redis-server on ${port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    execFileSync(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      { encoding: "utf8", stdio: "pipe" },
    );
    for (const port of ports) {
      for (let i = 0; ; i++) {
        if (/cluster_state:ok/.test(cli(port, "cluster", "info"))) break;
        if (i > 200) throw new Error(`cluster node ${port} never became ok`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: ports.map((p) => `redis://127.0.0.1:${p}`).join(","), ports, stop };
}

/** The port of the master that holds `key`'s slot (CLUSTER KEYSLOT, CLUSTER NODES). */
export function nodeOfKey(cluster: RedisCluster, key: string): number {
  const slot = Number(cli(cluster.ports[0]!, "cluster", "keyslot", key).trim());
  for (const line of cli(cluster.ports[0]!, "cluster", "nodes").trim().split("\n")) {
    const fields = line.split(" ");
    if (!fields[2]?.includes("master")) continue;
    for (const range of fields.slice(8)) {
      const [from, to = from] = range.split("-").map(Number);
      if (slot >= from! && slot <= to!) return Number(fields[1]!.split("@")[0]!.split(":")[1]);
    }
  }
  throw new Error(`no node holds slot ${slot}`);
}
