// What a test's simulation runs on: the live store given, a memory sink that keeps nothing, the
// server's key minter, the core's time-zone check; `extra` adds or overrides (prices, recording…).
import { isValidTimeZone, type SimulationDeps, type Store } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { MemoryStore } from "@tollgate/store-memory";

export function simulationDeps(source: Store, extra: Partial<SimulationDeps> = {}): SimulationDeps {
  return {
    source,
    workspaceId: "default",
    createStore: (hooks) => new MemoryStore({ retainEvents: false, retainAlerts: false, ...hooks }),
    keys: keyMinter,
    isValidTimeZone,
    ...extra,
  };
}
