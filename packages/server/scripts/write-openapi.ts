/**
 * Writes docs/openapi.json from the routes' own schemas: `npm run openapi`. A test fails when the
 * committed file differs from what the server generates (test/api/openapi.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../../cli/src/runtime.js";

export const OPENAPI_PATH = fileURLToPath(new URL("../../../docs/openapi.json", import.meta.url));

/** The OpenAPI document of a server built in-process (no port, a throwaway store), as the file holds it. */
export async function generateOpenApi(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-openapi-"));
  try {
    const server = await startServer({ dataDir, listen: false, adminKey: "tg_openapi_generator" });
    try {
      return `${JSON.stringify(server.app.swagger(), null, 2)}\n`;
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OPENAPI_PATH, await generateOpenApi());
  process.stdout.write(`wrote ${OPENAPI_PATH}\n`);
}
