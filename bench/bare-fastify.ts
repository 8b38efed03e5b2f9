/**
 * The HTTP baseline of bench/check: the same Fastify version as the server, one POST route that parses
 * the JSON body and answers a constant. No auth, no validation, no logging, no hooks.
 *
 *   node --import tsx bench/bare-fastify.ts --port 8788
 */
import { parseArgs } from "node:util";
import Fastify from "fastify";

const { values } = parseArgs({ options: { port: { type: "string", default: "8788" } } });

const app = Fastify({ logger: false });
const answer = { allowed: true, limits: [] };
app.post("/v1/check", async () => answer);
app.get("/health", async () => ({ status: "ok" }));
await app.listen({ port: Number(values.port), host: "127.0.0.1" });

process.once("SIGTERM", () => {
  app.close().then(() => process.exit(0));
});
