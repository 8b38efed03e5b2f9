export * from "./engine.js";
export type * from "./inputs.js";
export type * from "./ports.js";
