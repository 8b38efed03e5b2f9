import { hash, randomBytes, randomUUID } from "node:crypto";
import type { KeyMinter } from "@tollgate/core";

/** SHA-256, hex (the one-shot crypto.hash: no Hash object per call; every request hashes its key). */
const hashKey = (key: string) => hash("sha256", key, "hex");

/** API keys: 192 random bits, shown once; only their SHA-256 is stored. */
export const keyMinter: KeyMinter = {
  mint(role) {
    const key = `${role === "customer" ? "tgu_" : "tg_"}${randomBytes(24).toString("base64url")}`;
    return { key, prefix: key.slice(0, 10), hash: hashKey(key) };
  },
  hash: hashKey,
  id: (prefix) => `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 20)}`,
};
