import { randomBytes } from "node:crypto";

/** The PostgreSQL every test uses (trust auth on loopback); TOLLGATE_TEST_POSTGRES_URL overrides it. */
export const PG_URL = process.env.TOLLGATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other run uses: tests create it, and drop it after. */
export function freshSchema(prefix = "tg_test"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

/** Drops a schema made with freshSchema (and everything in it). */
export async function dropSchema(schema: string, url = PG_URL): Promise<void> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
