/**
 * Runs the dashboard fixture as a server to look at by hand:
 *   npx tsx test/dashboard/serve.ts   (prints the URL and an admin key; Ctrl-C stops it)
 */
import { startFixture } from "./fixture.js";

const f = await startFixture();
console.log(`dashboard: ${f.url}/\nadmin key: ${f.adminKey}\nservice key: ${f.serviceKey}`);
process.on("SIGINT", () => {
  f.close().then(() => process.exit(0));
});
