import type { Engine } from "../engine/engine.js";
import { invalid, TollgateError } from "../errors.js";

/**
 * A proposed tollgate.yaml, as a JSON document: each section maps an id to the body its PUT route
 * takes, or is a list of bodies that carry their `id` (see README "Configuration as code").
 */
export type ProposedConfig = Partial<Record<DefinitionSection, unknown>> & {
  pricing?: { unknown_model: string; fallback_model?: string };
};

/** Sections in the order `tollgate apply` applies them: what a later one refers to exists by then. */
export const DEFINITION_SECTIONS = [
  "prices",
  "meters",
  "plans",
  "customers",
  "limits",
  "rate_limits",
  "concurrency_limits",
  "balance_rules",
] as const;
export type DefinitionSection = (typeof DEFINITION_SECTIONS)[number];

/** A section as [id, body] pairs: a map keyed by id, or a list of bodies that carry their `id`. */
export function sectionEntries(section: unknown, name: string): [string, Record<string, unknown>][] {
  if (section === undefined || section === null) return [];
  if (Array.isArray(section)) {
    return section.map((item, i) => {
      if (typeof item !== "object" || item === null || typeof item.id !== "string") {
        throw invalid(`${name}[${i}]: a list entry needs an "id"`, { field: `config.${name}[${i}].id` });
      }
      const { id, ...body } = item as { id: string } & Record<string, unknown>;
      return [id, body];
    });
  }
  if (typeof section !== "object") {
    throw invalid(`${name} must be a map from id to definition, or a list`, { field: `config.${name}` });
  }
  return Object.entries(section as Record<string, unknown>).map(([id, body]) => {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw invalid(`${name}.${id} must be an object`, { field: `config.${name}.${id}` });
    }
    return [id, body as Record<string, unknown>];
  });
}

/**
 * Applies a proposed configuration to an engine, section by section in `tollgate apply`'s order,
 * through the engine's own operations (the same validation as the PUT routes' handlers). A problem is
 * a 400 whose field names the section and id.
 */
export async function applyDefinitions(engine: Engine, workspaceId: string, config: ProposedConfig) {
  const now = () => engine.clock.now();
  let applied = 0;
  for (const section of DEFINITION_SECTIONS) {
    for (const [id, body] of sectionEntries(config[section], section)) {
      try {
        switch (section) {
          case "prices":
            await engine.pricing.putPrice(
              workspaceId,
              id,
              { effective_from: "1970-01-01T00:00:00Z", ...body } as never,
              now(),
            );
            break;
          case "meters":
            await engine.putMeter(workspaceId, id, body as never);
            break;
          case "plans":
            await engine.putPlan(workspaceId, id, body as never);
            break;
          case "customers":
            await engine.putCustomer(workspaceId, id, body as never);
            break;
          case "limits":
            await engine.putLimit(workspaceId, "limit", id, body as never);
            break;
          case "rate_limits":
            await engine.putLimit(workspaceId, "rate_limit", id, body as never);
            break;
          case "concurrency_limits":
            await engine.putLimit(workspaceId, "concurrency_limit", id, body as never);
            break;
          case "balance_rules":
            await engine.putBalanceRule(workspaceId, id, body as never);
            break;
        }
        applied++;
      } catch (e) {
        if (e instanceof TollgateError && e.status < 500) {
          const field = e.details?.field;
          throw new TollgateError(e.code, `config ${section}/${id}: ${e.message}`, {
            ...e.details,
            field: `config.${section}.${id}${typeof field === "string" ? `.${field}` : ""}`,
          });
        }
        throw e;
      }
    }
  }
  if (config.pricing) {
    await engine.pricing.putSettings(workspaceId, config.pricing as never, now());
    applied++;
  }
  return applied;
}
