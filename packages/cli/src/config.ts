import { readFileSync } from "node:fs";
import { parse } from "yaml";

/**
 * tollgate.yaml: the workspace's definitions as code. Every section is a map from id to the body the
 * matching PUT route takes, so the file and the API never disagree.
 *
 * @example
 * meters:
 *   tokens: { event_type: llm.completion, aggregation: sum, value: [tokens_in, tokens_out] }
 * plans:
 *   pro: { name: Pro }
 * customers:
 *   acme: { name: Acme, plan: pro }
 * limits:
 *   - { id: monthly-tokens, plan: pro, meter: tokens, amount: 2000000, period: month }
 * rate_limits:
 *   per-key-rpm: { plan: pro, scope: key, limit: 100, window_seconds: 60 }
 */
type Section = Record<string, unknown> | ({ id: string } & Record<string, unknown>)[];

export interface TollgateConfig {
  meters?: Section;
  plans?: Section;
  customers?: Section;
  /** Quotas; a list form allows one id per scope (plan, customer, workspace). */
  limits?: Section;
  rate_limits?: Section;
  concurrency_limits?: Section;
  /**
   * Workspace price overrides, per model, USD per 1M tokens. Without `effective_from` a price from
   * the file is in force from the beginning (it overrides the catalogue for every event priced
   * from now on), so applying the file twice changes nothing.
   * @example { "gpt-4o": { input: "2.5", output: "10", cached_input: "1.25" } }
   */
  prices?: Section;
  /** @example { unknown_model: fallback, fallback_model: gpt-4o-mini } */
  pricing?: { unknown_model: string; fallback_model?: string };
  /**
   * The workspace's model classes (PUT /v1/settings/model-classes); plans list the classes they
   * include (`model_classes`), with `features` and `overage` (docs/plans.md).
   * @example { models: { gpt-4o-mini: small, gpt-4o: medium, "claude-opus*": premium }, default_class: large }
   */
  model_classes?: { models: Record<string, string>; default_class?: string | null };
  /** Debit rules: @example { per-1k-tokens: { meter: tokens, credits_per_unit: 1, unit: 1000 } } */
  balance_rules?: Section;
  /** Upstreams of the LLM proxy (read at start, never sent to the API); env TOLLGATE_OPENAI_* / TOLLGATE_ANTHROPIC_* win. */
  proxy?: ProxySection;
  /** Settings of the webhook worker (not definitions: read at start, never sent to the API). */
  webhooks?: WebhookSettingsSection;
  /** Alert settings (read at start). */
  alerts?: AlertSettingsSection;
}

export interface WebhookSettingsSection {
  /**
   * Deliver to loopback and private networks (10/8, 192.168/16, 169.254/16, fc00::/7, ...). Off by
   * default: an endpoint is a URL any admin can set, and the server should not reach inside its own
   * network for it (SSRF). Env TOLLGATE_WEBHOOKS_ALLOW_PRIVATE=1 turns it on too.
   * @default false
   */
  allow_private_addresses?: boolean;
  /** @default 10 */
  timeout_seconds?: number;
  /** Attempts in flight at once. @default 16 */
  concurrency?: number;
}

export interface AlertSettingsSection {
  /**
   * Raise `balance.low` when a customer's available credits fall under this many (once per top-up).
   * Env TOLLGATE_BALANCE_LOW_LEVEL. Unset: no balance.low alerts.
   * @example 1000
   */
  balance_low_level?: number;
}

/** Alert settings: environment over tollgate.yaml. */
export function alertSettings(
  configPath: string | undefined,
  env: Record<string, string | undefined>,
): { balanceLowLevel: number | null } {
  const file = configPath ? (loadConfig(configPath).alerts ?? {}) : {};
  const raw = env.TOLLGATE_BALANCE_LOW_LEVEL;
  const level = raw !== undefined && raw !== "" ? Number(raw) : file.balance_low_level;
  if (level !== undefined && !Number.isSafeInteger(level)) {
    throw new Error(`balance_low_level must be an integer, got ${raw ?? level}`);
  }
  return { balanceLowLevel: level ?? null };
}

/** The worker's settings: environment over tollgate.yaml over defaults. */
export function webhookSettings(
  configPath: string | undefined,
  env: Record<string, string | undefined>,
): { allowPrivateAddresses?: boolean; timeoutMs?: number; concurrency?: number } {
  const file = configPath ? (loadConfig(configPath).webhooks ?? {}) : {};
  const flag = env.TOLLGATE_WEBHOOKS_ALLOW_PRIVATE;
  const allow =
    flag !== undefined && flag !== "" ? /^(1|true|yes|on)$/i.test(flag) : file.allow_private_addresses;
  return {
    ...(allow !== undefined ? { allowPrivateAddresses: allow } : {}),
    ...(file.timeout_seconds !== undefined ? { timeoutMs: file.timeout_seconds * 1000 } : {}),
    ...(file.concurrency !== undefined ? { concurrency: file.concurrency } : {}),
  };
}

/**
 * @example
 * proxy:
 *   openai: { base_url: https://api.openai.com/v1, api_key: sk-... }
 *   anthropic: { base_url: https://api.anthropic.com, api_key: sk-ant-... }
 */
export interface ProxySection {
  openai?: { base_url?: string; api_key?: string };
  anthropic?: { base_url?: string; api_key?: string };
}

/** Sections in the order they are applied: what a later one refers to exists by then. */
const SECTIONS = [
  ["prices", "/v1/prices/"],
  ["meters", "/v1/meters/"],
  ["plans", "/v1/plans/"],
  ["customers", "/v1/customers/"],
  ["limits", "/v1/limits/"],
  ["rate_limits", "/v1/rate-limits/"],
  ["concurrency_limits", "/v1/concurrency-limits/"],
  ["balance_rules", "/v1/balance-rules/"],
] as const;

/** A section as [id, body] pairs: a map keyed by id, or a list of bodies that carry their `id`. */
function entries(section: Section | undefined, name: string): [string, unknown][] {
  if (section === undefined || section === null) return [];
  if (!Array.isArray(section)) return Object.entries(section);
  return section.map((item, i) => {
    if (typeof item?.id !== "string") throw new Error(`${name}[${i}]: a list entry needs an "id"`);
    const { id, ...body } = item;
    return [id, body];
  });
}

export function loadConfig(path: string): TollgateConfig {
  const doc = parse(readFileSync(path, "utf8")) ?? {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new Error(`${path}: expected a mapping at the top`);
  const known = new Set<string>([
    ...SECTIONS.map(([s]) => s),
    "pricing",
    "webhooks",
    "alerts",
    "proxy",
    "model_classes",
  ]);
  for (const key of Object.keys(doc)) {
    if (!known.has(key))
      throw new Error(`${path}: unknown section "${key}" (known: ${[...known].join(", ")})`);
  }
  return doc as TollgateConfig;
}

/** Sends one request; answers status and parsed body. */
export type Send = (method: "PUT", url: string, body: unknown) => Promise<{ status: number; body: unknown }>;

export interface ApplyReport {
  created: string[];
  updated: string[];
}

/** PUTs every definition; idempotent: applying the same file twice changes nothing the second time. */
export async function applyConfig(config: TollgateConfig, send: Send): Promise<ApplyReport> {
  const report: ApplyReport = { created: [], updated: [] };
  if (config.model_classes) {
    const res = await send("PUT", "/v1/settings/model-classes", config.model_classes);
    if (res.status !== 200) {
      const err = (res.body as { error?: { message?: string } })?.error;
      throw new Error(`model_classes: ${res.status} ${err?.message ?? JSON.stringify(res.body)}`);
    }
    report.updated.push("model_classes");
  }
  for (const [section, prefix] of SECTIONS) {
    for (const [id, given] of entries(config[section], section)) {
      const body =
        section === "prices" && (given as { effective_from?: string }).effective_from === undefined
          ? { ...(given as object), effective_from: "1970-01-01T00:00:00Z" }
          : given;
      const res = await send("PUT", prefix + encodeURIComponent(id), body);
      if (res.status === 201) report.created.push(`${section}/${id}`);
      else if (res.status === 200) report.updated.push(`${section}/${id}`);
      else {
        const err = (res.body as { error?: { message?: string } })?.error;
        throw new Error(`${section}/${id}: ${res.status} ${err?.message ?? JSON.stringify(res.body)}`);
      }
    }
  }
  if (config.pricing) {
    const res = await send("PUT", "/v1/settings/pricing", config.pricing);
    if (res.status !== 200) {
      const err = (res.body as { error?: { message?: string } })?.error;
      throw new Error(`pricing: ${res.status} ${err?.message ?? JSON.stringify(res.body)}`);
    }
    report.updated.push("pricing");
  }
  return report;
}

/** A Send over HTTP to a running server. */
export function httpSender(baseUrl: string, key: string): Send {
  return async (method, url, body) => {
    const res = await fetch(new URL(url, baseUrl), {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  };
}
