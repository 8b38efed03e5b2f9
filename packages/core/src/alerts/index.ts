/** Alerts and webhooks: threshold crossing, alert ids and payloads, retry schedule, the alert center. */
export * from "./backoff.js";
export * from "./center.js";
export * from "./levels.js";
export * from "./payload.js";
