/** Where the proxy forwards to. Set in tollgate.yaml (`proxy:`) or the environment. */
export interface UpstreamConfig {
  /**
   * OpenAI: the API root including `/v1` (as the openai client's `baseURL`); Anthropic: without it.
   * @default "https://api.openai.com/v1" | "https://api.anthropic.com"
   */
  baseUrl?: string;
  /** The provider key the proxy sends upstream (end users never see it). */
  apiKey?: string;
}

export interface ProxyOptions {
  openai?: UpstreamConfig;
  anthropic?: UpstreamConfig;
  /**
   * Output tokens reserved for a call that sets no maximum (and the most such a call may produce while
   * a balance or a non-token quota bounds the customer). @default 4096
   */
  defaultMaxOutputTokens?: number;
  /** TTL of the hold taken for each call (a crashed proxy frees it then). @default 600 */
  reservationTtlSeconds?: number;
  /** Deadline for the upstream's response headers. @default 600000 */
  upstreamTimeoutMs?: number;
}

export const DEFAULT_BASE_URL = {
  openai: "https://api.openai.com/v1",
  anthropic: "https://api.anthropic.com",
} as const;

/** Reads TOLLGATE_OPENAI_BASE_URL / _API_KEY and TOLLGATE_ANTHROPIC_BASE_URL / _API_KEY over `fromFile`. */
export function proxyOptionsFrom(
  env: Record<string, string | undefined>,
  fromFile: {
    openai?: { base_url?: string; api_key?: string };
    anthropic?: { base_url?: string; api_key?: string };
  } = {},
): ProxyOptions {
  const one = (name: "OPENAI" | "ANTHROPIC", file?: { base_url?: string; api_key?: string }) => {
    const baseUrl = env[`TOLLGATE_${name}_BASE_URL`] || file?.base_url;
    const apiKey = env[`TOLLGATE_${name}_API_KEY`] || file?.api_key;
    return baseUrl || apiKey ? { ...(baseUrl ? { baseUrl } : {}), ...(apiKey ? { apiKey } : {}) } : undefined;
  };
  const openai = one("OPENAI", fromFile.openai);
  const anthropic = one("ANTHROPIC", fromFile.anthropic);
  return { ...(openai ? { openai } : {}), ...(anthropic ? { anthropic } : {}) };
}
