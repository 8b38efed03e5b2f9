export * from "./apply.js";
export * from "./report.js";
export * from "./runner.js";
