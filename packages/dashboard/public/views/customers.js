// @ts-check
/**
 * Customers: the list with plan, limit states and balance; a customer's page with its limits,
 * recent usage and alerts, balance, grants and balance transactions.
 */
import { mapLimited } from "../api.js";
import { meterBar } from "../chart.js";
import { h, replace } from "../dom.js";
import { formatCount, formatDate, formatMoney, formatPercent, parseUsd, query, toCount } from "../format.js";
import { badge, failed, heading, loading, stat, table } from "./common.js";

const PAGE = 25;
/** Lookups in flight at once when a page of customers loads its limits and balances. */
const PARALLEL = 4;

/**
 * @param {any} l a limit of GET /v1/customers/{id}/limits
 */
function limitBar(l) {
  const name = l.group ? `${l.id} (${Object.values(l.group).join(", ")})` : l.id;
  const pct = typeof l.percent_used === "number" ? l.percent_used : null;
  return h(
    "div",
    { class: "limit", "data-limit": l.id, "data-state": l.state },
    h("span", { class: "limit-name" }, name, " ", badge(l.state)),
    meterBar({
      percent: pct,
      state: l.state,
      label: `${name}: ${l.state}`,
      text: `${formatPercent(pct)} · ${l.reset_at ? `resets ${formatDate(l.reset_at, { time: true })}` : "never resets"}`,
    }),
  );
}

/** @param {any} b */
function balanceText(b) {
  if (!b) return "—";
  return `${formatCount(b.available)} available`;
}

/**
 * @param {import("../app.js").ViewContext} ctx
 */
export async function renderCustomers(ctx) {
  const { api, params } = ctx;
  const cursor = params.get("cursor") ?? "";
  replace(ctx.main, heading("Customers"), loading("Loading customers…"));
  const page = await api.get(`/v1/customers${query({ limit: PAGE, cursor })}`);
  const rows = await mapLimited(page.data, PARALLEL, async (/** @type {any} */ c) => {
    const [limits, balance] = await Promise.all([
      api.get(`/v1/customers/${encodeURIComponent(c.id)}/limits`).catch((err) => ({ error: err })),
      api.get(`/v1/customers/${encodeURIComponent(c.id)}/balance`).catch(() => null),
    ]);
    return { customer: c, limits, balance };
  });
  if (!ctx.isCurrent()) return;
  const worst = (/** @type {any[]} */ ls) =>
    ["exceeded", "critical", "warning", "ok"].find((st) => ls.some((l) => l.state === st)) ?? "none";
  replace(
    ctx.main,
    heading("Customers", "Plan, the state of every limit in its current period, and the credit balance."),
    h(
      "section",
      { class: "card" },
      table({
        caption: "Customers",
        testid: "customers-list",
        stack: true,
        empty: "No customers yet.",
        rows,
        columns: [
          {
            label: "Customer",
            cell: (r) =>
              h(
                "span",
                null,
                h("a", { href: `#/customers/${encodeURIComponent(r.customer.id)}` }, r.customer.id),
                r.customer.name ? h("span", { class: "sub" }, r.customer.name) : null,
              ),
          },
          { label: "Plan", cell: (r) => r.customer.plan ?? "—" },
          {
            label: "Limits",
            cell: (r) =>
              r.limits.error
                ? failed(r.limits.error, "Limits")
                : r.limits.data.length === 0
                  ? h("span", { class: "sub" }, "no limits")
                  : h(
                      "div",
                      { class: "limits", "data-worst": worst(r.limits.data) },
                      ...r.limits.data.map((/** @type {any} */ l) => limitBar(l)),
                    ),
          },
          {
            label: "Balance (credits)",
            num: true,
            cell: (r) => h("span", { "data-testid": `balance-${r.customer.id}` }, balanceText(r.balance)),
          },
        ],
      }),
      h(
        "nav",
        { class: "pager", "aria-label": "Customer pages" },
        cursor ? h("a", { href: "#/customers", class: "button secondary" }, "First page") : null,
        page.next_cursor
          ? h(
              "a",
              {
                href: `#/customers?cursor=${encodeURIComponent(page.next_cursor)}`,
                class: "button secondary",
              },
              "Next page",
            )
          : null,
      ),
    ),
  );
}

/**
 * @param {import("../app.js").ViewContext} ctx
 * @param {string} id
 */
export async function renderCustomer(ctx, id) {
  const { api, params } = ctx;
  const enc = encodeURIComponent(id);
  replace(ctx.main, heading(`Customer ${id}`), loading("Loading the customer…"));
  const customer = await api.get(`/v1/customers/${enc}`);
  const settle = (/** @type {Promise<any>} */ p) =>
    p.then(
      (value) => ({ ok: true, value }),
      (error) => ({ ok: false, error }),
    );
  const txCursor = params.get("tx") ?? "";
  // The summary's range ends with the server's current hour: "recent" is by the server's clock.
  const models = await settle(api.get(`/v1/usage/summary${query({ view: "models", customer: id })}`));
  // "Recent events": the API has no raw event listing, so the page shows the last 48 hours of the
  // customer's usage hour by hour (from the rollups) and the alerts raised about it.
  const to = new Date(models.ok ? models.value.to : Math.ceil((Date.now() + 1) / 3_600_000) * 3_600_000);
  const from = new Date(to.getTime() - 24 * 3_600_000);
  const iso = (/** @type {Date} */ d) => d.toISOString().replace(".000Z", "Z");
  const [limits, balance, transactions, recent, alerts] = await Promise.all([
    settle(api.get(`/v1/customers/${enc}/limits`)),
    settle(api.get(`/v1/customers/${enc}/balance`)),
    settle(api.get(`/v1/customers/${enc}/balance/transactions${query({ limit: 25, cursor: txCursor })}`)),
    settle(
      api.get(
        `/v1/usage${query({ from: iso(from), to: iso(to), granularity: "hour", customer: id, group_by: "model" })}`,
      ),
    ),
    settle(api.get(`/v1/alerts${query({ customer: id, limit: 20 })}`)),
  ]);
  if (!ctx.isCurrent()) return;
  replace(
    ctx.main,
    h("p", { class: "crumbs" }, h("a", { href: "#/customers" }, "Customers"), " / ", id),
    heading(
      customer.name ? `${customer.name} (${id})` : `Customer ${id}`,
      `Plan ${customer.plan ?? "none"} · time zone ${customer.timezone ?? "UTC"} · since ${formatDate(customer.created_at)}`,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "limits-h" },
      h("h2", { id: "limits-h" }, "Limits"),
      limits.ok
        ? table({
            caption: "Limits in their current period",
            testid: "customer-limits",
            stack: true,
            empty: "No limits apply to this customer.",
            rows: limits.value.data,
            columns: [
              {
                label: "Limit",
                cell: (l) => (l.group ? `${l.id} (${Object.values(l.group).join(", ")})` : l.id),
              },
              { label: "State", cell: (l) => limitBar(l) },
              { label: "Used", num: true, cell: (l) => formatCount(l.used ?? 0) },
              { label: "Reserved", num: true, cell: (l) => formatCount(l.reserved ?? 0) },
              { label: "Limit", num: true, cell: (l) => formatCount(l.limit ?? 0) },
              { label: "Remaining", num: true, cell: (l) => formatCount(l.remaining ?? 0) },
              {
                label: "Resets",
                cell: (l) => (l.reset_at ? formatDate(l.reset_at, { time: true }) : "never"),
              },
              { label: "Enforcement", cell: (l) => l.enforcement ?? "—" },
            ],
          })
        : failed(limits.error, "Limits"),
    ),
    h(
      "div",
      { class: "two" },
      h(
        "section",
        { class: "card", "aria-labelledby": "balance-h" },
        h("h2", { id: "balance-h" }, "Balance"),
        balance.ok ? balanceBlock(balance.value) : failed(balance.error, "Balance"),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "cmodels-h" },
        h("h2", { id: "cmodels-h" }, "Usage by model, last 30 days"),
        models.ok
          ? table({
              caption: "Usage by model",
              empty: "No usage in the last 30 days.",
              rows: models.value.data,
              columns: [
                { label: "Model", cell: (r) => r.model ?? "(none)" },
                { label: "Requests", num: true, cell: (r) => formatCount(r.requests) },
                { label: "Tokens", num: true, cell: (r) => formatCount(r.tokens_total) },
                { label: "Cost", num: true, cell: (r) => formatMoney(parseUsd(r.cost)) },
              ],
            })
          : failed(models.error, "Usage by model"),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "recent-h" },
      h("h2", { id: "recent-h" }, "Recent usage, last 24 hours"),
      h("p", { class: "note" }, "Hour by hour and model, newest first (from the hourly rollups)."),
      recent.ok
        ? table({
            caption: "Recent usage by hour",
            testid: "customer-recent",
            empty: "No usage in the last 24 hours.",
            rows: [...recent.value.data].reverse(),
            columns: [
              { label: "Hour (UTC)", cell: (r) => formatDate(r.period_start, { time: true }) },
              { label: "Model", cell: (r) => r.model ?? "(none)" },
              { label: "Requests", num: true, cell: (r) => formatCount(r.requests) },
              { label: "Tokens", num: true, cell: (r) => formatCount(r.tokens_total) },
              { label: "Cost", num: true, cell: (r) => formatMoney(parseUsd(r.cost)) },
            ],
          })
        : failed(recent.error, "Recent usage"),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "calerts-h" },
      h("h2", { id: "calerts-h" }, "Recent alerts"),
      alerts.ok ? alertsTable(alerts.value.data, "customer-alerts") : failed(alerts.error, "Alerts"),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "tx-h" },
      h("h2", { id: "tx-h" }, "Balance transactions"),
      transactions.ok
        ? [
            table({
              caption: "Balance transactions, oldest first",
              testid: "customer-transactions",
              stack: true,
              empty: "No balance transactions.",
              rows: transactions.value.data,
              columns: [
                { label: "#", cell: (t) => String(t.seq) },
                { label: "When (UTC)", cell: (t) => formatDate(t.at, { time: true }) },
                { label: "Kind", cell: (t) => t.kind },
                {
                  label: "Amount",
                  num: true,
                  cell: (t) =>
                    t.amount !== undefined
                      ? `${t.kind === "credit" ? "+" : t.kind === "debit" || t.kind === "commit" ? "−" : ""}${formatCount(t.amount)}`
                      : t.units !== undefined
                        ? `${formatCount(t.units)} units × ${t.credits_per_unit}/${t.unit}`
                        : "—",
                },
                {
                  label: "Detail",
                  cell: (t) => t.description ?? t.rule ?? t.hold ?? t.idempotency_key ?? "—",
                },
              ],
            }),
            transactions.value.next_cursor
              ? h(
                  "nav",
                  { class: "pager", "aria-label": "Transaction pages" },
                  h(
                    "a",
                    {
                      class: "button secondary",
                      href: `#/customers/${enc}?tx=${encodeURIComponent(transactions.value.next_cursor)}`,
                    },
                    "Older transactions",
                  ),
                )
              : null,
          ]
        : failed(transactions.error, "Balance transactions"),
    ),
  );
}

/** @param {any} b */
function balanceBlock(b) {
  return [
    h(
      "dl",
      { class: "stats" },
      stat("Available", formatCount(b.available), "balance-available", String(b.available)),
      stat("Balance", formatCount(b.balance), "balance-balance", String(b.balance)),
      stat("Held", formatCount(b.held), "balance-held", String(b.held)),
      stat("Minimum", formatCount(b.minimum_balance), "balance-minimum", String(b.minimum_balance)),
    ),
    table({
      caption: "Grants, in burn order",
      empty: "No grants.",
      rows: b.grants ?? [],
      columns: [
        { label: "Grant", cell: (g) => g.description ?? g.id },
        {
          label: "Remaining",
          num: true,
          cell: (g) => `${formatCount(g.remaining)} of ${formatCount(g.amount)}`,
        },
        { label: "Expires", cell: (g) => (g.expires_at ? formatDate(g.expires_at) : "never") },
        { label: "Status", cell: (g) => badge(g.status ?? "active") },
      ],
    }),
  ];
}

/**
 * @param {any[]} alerts
 * @param {string} testid
 */
export function alertsTable(alerts, testid) {
  return table({
    caption: "Alerts, newest first",
    testid,
    stack: true,
    empty: "No alerts.",
    rows: alerts,
    columns: [
      { label: "When (UTC)", cell: (a) => formatDate(a.created_at, { time: true }) },
      { label: "Type", cell: (a) => badge(a.type.replace("limit.", "").replace(".", "_")) },
      {
        label: "Customer",
        cell: (a) =>
          a.customer
            ? h("a", { href: `#/customers/${encodeURIComponent(a.customer)}` }, a.customer)
            : "workspace",
      },
      { label: "Subject", cell: (a) => alertSubject(a) },
    ],
  });
}

/** @param {any} a */
function alertSubject(a) {
  const d = a.data ?? {};
  if (d.limit) {
    return `${d.limit.id}: ${formatPercent(d.percent_used)} of ${formatCount(d.limit.amount)} (${d.limit.meter}, ${typeof d.limit.period === "string" ? d.limit.period : "rolling"})`;
  }
  if (a.type === "balance.low")
    return `available ${formatCount(d.available ?? 0)} below ${formatCount(d.level ?? 0)}`;
  if (a.type === "usage.summary" && d.window_start) {
    const tokens = d.meters?.tokens ?? toCount(d.values?.tokens_in) + toCount(d.values?.tokens_out);
    return `${d.period ?? "period"} from ${formatDate(d.window_start)}: ${formatCount(d.events ?? 0)} events, ${formatCount(tokens)} tokens, ${formatMoney(parseUsd(d.values?.cost ?? "0"))}`;
  }
  return "—";
}
