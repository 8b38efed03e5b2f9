/**
 * Rate limits and quotas in front of an Express API:
 *   TOLLGATE_URL=... TOLLGATE_API_KEY=tg_... npx tsx examples/sdk/express.ts
 *   curl -i -H "x-api-key: demo" http://127.0.0.1:3000/hello     # four times: the fourth is a 429
 */
import { Tollgate, tollgateExpress } from "@tollgate/sdk";
import express from "express";

const tollgate = new Tollgate({ failMode: "open" });
await tollgate.customers.put("acme", { name: "Acme Inc." });
await tollgate.rateLimits.put("demo-rpm", {
  customer: "acme",
  scope: "key",
  event_type: "http.request",
  limit: 3,
  window_seconds: 60,
});

const app = express();
app.use(
  tollgateExpress({
    client: tollgate,
    // Your own authentication decides who the caller is; here a header names the key.
    identify: (req) => {
      const key = req.headers["x-api-key"];
      return typeof key === "string" ? { customer: "acme", key } : null;
    },
  }),
);
app.get("/hello", (_req, res) => {
  res.json({ hello: "world" });
});
app.listen(3000, "127.0.0.1", () => console.log("listening on http://127.0.0.1:3000"));
