#!/usr/bin/env node
// Runs the TypeScript CLI directly (no build step for users): tsx registers its ESM loader here.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
