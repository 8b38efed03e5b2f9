export * from "./balances.js";
export * from "./book.js";
export * from "./engine.js";
export * from "./entitlements.js";
export type * from "./inputs.js";
export * from "./limiter.js";
export type * from "./ports.js";
export * from "./pricing.js";
export * from "./reports.js";
