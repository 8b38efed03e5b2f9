import { readdirSync, readFileSync } from "node:fs";
import type Database from "better-sqlite3";

const migrationsDir = new URL("../migrations/", import.meta.url);

/** Applies every `NNN_name.sql` above the database's `user_version`, each in its own transaction. */
export function migrate(db: Database.Database): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  const files = readdirSync(migrationsDir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort();
  let version = current;
  for (const file of files) {
    const n = Number(file.slice(0, 3));
    if (n <= current) continue;
    const sql = readFileSync(new URL(file, migrationsDir), "utf8");
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${n}`);
    })();
    version = n;
  }
  return version;
}
