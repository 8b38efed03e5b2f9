export * from "./csv.js";
export * from "./trend.js";
export * from "./usage.js";
