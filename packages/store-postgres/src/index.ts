export { migrate } from "./migrate.js";
export { PostgresStore, type PostgresStoreOptions } from "./store.js";
