/**
 * The workspace's map of models to classes (small / medium / large / premium, or any names). A plan
 * lists the classes it includes; an event's class is derived from `dimensions.model`.
 *
 * Matching: model names are compared trimmed and in lower case. An exact entry wins; otherwise the
 * longest pattern ending in `*` whose prefix the model starts with ("claude-3-5-sonnet*" covers the
 * dated snapshots); otherwise `default_class` (null: the model has no class, and no plan's class
 * list refuses it).
 */
import { invalid } from "../errors.js";
import { planBounds } from "./terms.js";

export interface ModelClassSettings {
  /** model (or "prefix*") → class */
  models: Record<string, string>;
  /** The class of a model the map does not name; null leaves it without a class. @default null */
  defaultClass: string | null;
}

export interface ModelClassSettingsInput {
  models: Record<string, string>;
  default_class?: string | null;
}

export const EMPTY_MODEL_CLASSES: ModelClassSettings = Object.freeze({
  models: Object.freeze({}) as Record<string, string>,
  defaultClass: null,
}) as ModelClassSettings;

const normalize = (model: string) => model.trim().toLowerCase();

export function toModelClassSettings(input: ModelClassSettingsInput): ModelClassSettings {
  const entries = Object.entries(input.models ?? {});
  if (entries.length > planBounds.modelClassMapEntriesMax) {
    throw invalid(`at most ${planBounds.modelClassMapEntriesMax} models`, { field: "models" });
  }
  const models: Record<string, string> = {};
  for (const [model, cls] of entries) {
    const key = normalize(model);
    if (key === "" || key === "*") throw invalid("a model name is not empty", { field: `models.${model}` });
    if (key.indexOf("*") !== -1 && key.indexOf("*") !== key.length - 1) {
      throw invalid("`*` may only end a model pattern", { field: `models.${model}` });
    }
    if (models[key] !== undefined && models[key] !== cls) {
      throw invalid(`model ${key} is mapped twice (names are compared in lower case)`, {
        field: `models.${model}`,
      });
    }
    models[key] = cls;
  }
  return { models, defaultClass: input.default_class ?? null };
}

export function presentModelClassSettings(s: ModelClassSettings) {
  return { models: s.models, default_class: s.defaultClass };
}

/** Resolves model → class quickly; built once per settings version. */
export class ModelClassMap {
  private readonly exact = new Map<string, string>();
  /** Patterns, longest prefix first. */
  private readonly prefixes: [string, string][] = [];
  private readonly memo = new Map<string, string | null>();

  constructor(readonly settings: ModelClassSettings) {
    for (const [model, cls] of Object.entries(settings.models)) {
      if (model.endsWith("*")) this.prefixes.push([model.slice(0, -1), cls]);
      else this.exact.set(model, cls);
    }
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  /** Whether the map can give any model a class. */
  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.length === 0 && this.settings.defaultClass === null;
  }

  classOf(model: string): string | null {
    const hit = this.memo.get(model);
    if (hit !== undefined) return hit;
    const key = normalize(model);
    let cls = this.exact.get(key);
    if (cls === undefined) {
      for (const [prefix, c] of this.prefixes) {
        if (key.startsWith(prefix)) {
          cls = c;
          break;
        }
      }
    }
    const result = cls ?? this.settings.defaultClass;
    if (this.memo.size >= 10_000) this.memo.clear();
    this.memo.set(model, result);
    return result;
  }

  /** Every class the map names (with the default), sorted. */
  classes(): string[] {
    const all = new Set(Object.values(this.settings.models));
    if (this.settings.defaultClass !== null) all.add(this.settings.defaultClass);
    return [...all].sort();
  }
}
