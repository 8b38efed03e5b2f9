export { API_VERSION, type AppOptions, createApp } from "./app.js";
export { keyMinter } from "./crypto.js";
export { createMetrics, type Metrics } from "./metrics.js";
export { DEFAULT_OVERLOAD, type OverloadOptions } from "./overload.js";
export { loadCatalogue as priceCatalogue } from "./prices/catalogue.js";
export { type ApiRateLimitOptions, DEFAULT_API_RATE_LIMIT } from "./protect.js";
export { type ProxyOptions, proxyOptionsFrom, type UpstreamConfig } from "./proxy/config.js";
export { csvChunks as usageCsvChunks, jsonChunks as usageJsonChunks } from "./routes/usage.js";
export * from "./webhooks/index.js";
