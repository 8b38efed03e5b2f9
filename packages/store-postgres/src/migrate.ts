import { readdirSync, readFileSync } from "node:fs";
import type pg from "pg";

const migrationsDir = new URL("../migrations/", import.meta.url);

/**
 * Applies every `NNN_name.sql` above the schema's recorded version, each in its own transaction,
 * under a session advisory lock: several processes starting at once apply each migration once (the
 * others wait, then find it applied).
 */
export async function migrate(client: pg.ClientBase, schema: string): Promise<number> {
  const lockKey = `tollgate.migrate:${schema}`;
  await client.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ v: number | null }>(
      `SELECT max(version) AS v FROM ${quoteIdent(schema)}.schema_migrations`,
    );
    const current = rows[0]?.v ?? 0;
    const files = readdirSync(migrationsDir)
      .filter((f) => /^\d{3}_.+\.sql$/.test(f))
      .sort();
    let version = current;
    for (const file of files) {
      const n = Number(file.slice(0, 3));
      if (n <= current) continue;
      const sql = readFileSync(new URL(file, migrationsDir), "utf8");
      await client.query("BEGIN");
      try {
        await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
        await client.query(sql);
        await client.query(
          `INSERT INTO ${quoteIdent(schema)}.schema_migrations (version, name) VALUES ($1, $2)`,
          [n, file],
        );
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      }
      version = n;
    }
    return version;
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey]);
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
