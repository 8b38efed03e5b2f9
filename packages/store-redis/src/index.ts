export { RedisLimiter, type RedisLimiterOptions } from "./limiter.js";
export * as scripts from "./scripts.js";
