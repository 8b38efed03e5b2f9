import type { Role } from "../types.js";

/** Secrets and ids need randomness and hashing, which the core does not do itself. */
export interface KeyMinter {
  /** A new plaintext key and what is stored of it. */
  mint(role: Role | "customer"): { key: string; prefix: string; hash: string };
  /** The stored hash of a presented key. */
  hash(key: string): string;
  /** A new unique id with a readable prefix ("key_…"). */
  id(prefix: string): string;
}
