import { randomBytes } from "node:crypto";

/** The PostgreSQL every test uses (trust auth on loopback); TOLLGATE_TEST_POSTGRES_URL overrides it. */
export const PG_URL = process.env.TOLLGATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other run uses: tests create it, and drop it after. */
export function freshSchema(prefix = "tg_test"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}
