export { migrate } from "./migrate.js";
export { SqliteStore, type SqliteStoreOptions } from "./store.js";
