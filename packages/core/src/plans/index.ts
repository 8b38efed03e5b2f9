/** Plan terms (features, model classes, overage) and the workspace's model-class map. Pure. */
export * from "./model-classes.js";
export * from "./terms.js";
