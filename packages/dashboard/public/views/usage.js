// @ts-check
/**
 * Usage: daily (30 days or the chosen range), weekly (12 weeks, week over week) and monthly
 * (12 months, trend) charts; the breakdown by model, workflow and customer; filters; export.
 * Everything comes from the report endpoints, which read the hourly and daily rollups.
 */
import { barChart, meterBar } from "../chart.js";
import { h, replace } from "../dom.js";
import {
  dayToInstant,
  formatCount,
  formatMoney,
  formatPercent,
  METRICS,
  metricOf,
  parseUsd,
  periodLabel,
  query,
  sumRows,
  usdString,
} from "../format.js";
import { failed, heading, loading, stat, table } from "./common.js";

/** Longest range the daily chart draws (days); longer ranges ask for weekly or monthly instead. */
const DAILY_BARS_MAX = 400;
const DAY_MS = 86_400_000;

/** @typedef {"tokens" | "requests" | "cost"} Metric */

/** A narrower drawing on a phone, so that the chart's text stays readable once scaled down. */
const chartWidth = (/** @type {number} */ wide) =>
  window.matchMedia("(max-width: 600px)").matches ? 400 : wide;

/**
 * @param {import("../app.js").ViewContext} ctx
 */
export async function renderUsage(ctx) {
  const { api, params } = ctx;
  const filters = {
    customer: params.get("customer") ?? "",
    model: params.get("model") ?? "",
    workflow: params.get("workflow") ?? "",
  };
  const fromDay = params.get("from") ?? "";
  const toDay = params.get("to") ?? "";
  /** @type {Metric} */
  const metric = /** @type {Metric} */ (
    ["tokens", "requests", "cost"].includes(params.get("metric") ?? "") ? params.get("metric") : "tokens"
  );
  const ranged = Boolean(dayToInstant(fromDay) && dayToInstant(toDay, true));

  replace(ctx.main, heading("Usage"), loading("Loading usage…"));

  // The day chart first: its range (the last 30 days to the current hour, or the chosen dates) is
  // the range of every breakdown below, so that all numbers on the page add up to the same totals.
  const f = { customer: filters.customer, model: filters.model, workflow: filters.workflow };
  /** @type {{ from: string, to: string, data: any[] }} */
  let daily;
  let rangeError = "";
  if (ranged) {
    const from = /** @type {string} */ (dayToInstant(fromDay));
    const to = /** @type {string} */ (dayToInstant(toDay, true));
    const days = (Date.parse(to) - Date.parse(from)) / DAY_MS;
    if (days <= 0) rangeError = "The start date must be on or before the end date.";
    else if (days > DAILY_BARS_MAX)
      rangeError = `The daily chart draws at most ${DAILY_BARS_MAX} days; the breakdowns below cover the whole range.`;
    const rows =
      days > 0 && days <= DAILY_BARS_MAX
        ? (await api.get(`/v1/usage${query({ from, to, granularity: "day", ...f })}`)).data
        : [];
    daily = { from, to, data: fillDays(rows, from, to) };
  } else {
    daily = await api.get(`/v1/usage/summary${query({ view: "daily", ...f })}`);
  }
  const range = { from: daily.from, to: daily.to };

  const settle = (/** @type {Promise<any>} */ p) =>
    p.then(
      (value) => ({ ok: true, value }),
      (error) => ({ ok: false, error }),
    );
  const [weekly, monthly, models, workflows, customers, options, customerList] = await Promise.all([
    settle(api.get(`/v1/usage/summary${query({ view: "weekly", ...f })}`)),
    settle(api.get(`/v1/usage/summary${query({ view: "monthly", ...f })}`)),
    settle(api.get(`/v1/usage/summary${query({ view: "models", ...range, ...f })}`)),
    settle(api.get(`/v1/usage${query({ ...range, group_by: "workflow", ...f })}`)),
    settle(api.get(`/v1/usage${query({ ...range, group_by: "customer", ...f })}`)),
    // The choices of the model and workflow filters: what the last year used, unfiltered.
    settle(
      api.get(
        `/v1/usage${query({ from: isoDay(Date.parse(daily.to) - 366 * DAY_MS), to: daily.to, group_by: "model,workflow" })}`,
      ),
    ),
    // Suggestions only (a workspace may have many customers): the first page; any id can be typed.
    settle(api.get("/v1/customers?limit=500")),
  ]);
  if (!ctx.isCurrent()) return;

  const modelChoices = new Set();
  const workflowChoices = new Set();
  if (options.ok)
    for (const r of options.value.data) {
      if (r.model !== null) modelChoices.add(r.model);
      if (r.workflow !== null) workflowChoices.add(r.workflow);
    }
  const customerChoices = customerList.ok ? customerList.value.data.map((/** @type {any} */ c) => c.id) : [];

  const chartsBox = h("div", { class: "charts" });
  const drawCharts = (/** @type {Metric} */ m) =>
    replace(
      chartsBox,
      dailyCard(daily, m, ranged, rangeError),
      weekly.ok ? weeklyCard(weekly.value, m) : failed(weekly.error, "Weekly usage"),
      monthly.ok ? monthlyCard(monthly.value, m) : failed(monthly.error, "Monthly usage"),
    );
  drawCharts(metric);

  const totals = sumRows(daily.data);
  replace(
    ctx.main,
    heading(
      "Usage",
      `${ranged ? `${fromDay} to ${toDay}` : "Last 30 days"} (UTC)${describeFilters(filters)}. Figures are exact; charts round for drawing.`,
    ),
    filterForm(ctx, filters, fromDay, toDay, metric, {
      customers: customerChoices,
      models: [...modelChoices].sort(),
      workflows: [...workflowChoices].sort(),
    }),
    h(
      "section",
      { "aria-labelledby": "totals-h", class: "card" },
      h("h2", { id: "totals-h" }, "Totals"),
      h(
        "dl",
        { class: "stats" },
        stat("Tokens", formatCount(totals.tokensTotal), "total-tokens", totals.tokensTotal.toString()),
        stat("Requests", formatCount(totals.requests), "total-requests", totals.requests.toString()),
        stat("Cost", formatMoney(totals.cost), "total-cost", usdString(totals.cost)),
        stat("Steps", formatCount(totals.steps), "total-steps", totals.steps.toString()),
      ),
    ),
    metricSwitch(metric, (m) => {
      drawCharts(m);
      const p = new URLSearchParams(params);
      p.set("metric", m);
      history.replaceState(null, "", `#/usage?${p}`);
    }),
    chartsBox,
    models.ok ? modelsCard(models.value) : failed(models.error, "Usage by model"),
    h(
      "div",
      { class: "two" },
      workflows.ok ? workflowsCard(workflows.value.data) : failed(workflows.error, "Usage by workflow"),
      customers.ok ? customersCard(customers.value.data) : failed(customers.error, "Usage by customer"),
    ),
    exportCard(ctx, range, f),
  );
}

/** @param {number} ms */
const isoDay = (ms) => new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().replace(".000Z", "Z");

/**
 * Day rows of a range with the days that had no usage as zeros.
 * @param {any[]} rows
 * @param {string} from
 * @param {string} to
 */
function fillDays(rows, from, to) {
  const byStart = new Map(rows.map((r) => [Date.parse(r.period_start), r]));
  const out = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += DAY_MS) {
    const iso = new Date(t).toISOString().replace(".000Z", "Z");
    out.push(
      byStart.get(t) ?? {
        period_start: iso,
        tokens_in: 0,
        tokens_out: 0,
        tokens_total: 0,
        steps: 0,
        requests: 0,
        cost: "0.000000",
      },
    );
  }
  return out;
}

/** @param {{customer: string, model: string, workflow: string}} f */
function describeFilters(f) {
  const parts = Object.entries(f)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${v}`);
  return parts.length ? `, ${parts.join(", ")}` : "";
}

/**
 * @param {import("../app.js").ViewContext} ctx
 * @param {{customer: string, model: string, workflow: string}} filters
 * @param {string} fromDay
 * @param {string} toDay
 * @param {Metric} metric
 * @param {{customers: string[], models: string[], workflows: string[]}} choices
 */
function filterForm(ctx, filters, fromDay, toDay, metric, choices) {
  /**
   * @param {string} name
   * @param {string} label
   * @param {string[]} values
   * @param {string} current
   */
  const select = (name, label, values, current) => {
    const all = current && !values.includes(current) ? [current, ...values] : values;
    return h(
      "div",
      { class: "field" },
      h("label", { for: `filter-${name}` }, label),
      h(
        "select",
        { id: `filter-${name}`, name },
        h("option", { value: "" }, "All"),
        ...all.map((v) => h("option", { value: v, selected: v === current }, v)),
      ),
    );
  };
  const suggest = (
    /** @type {string} */ name,
    /** @type {string} */ label,
    /** @type {string[]} */ values,
    /** @type {string} */ current,
  ) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: `filter-${name}` }, label),
      h("input", {
        id: `filter-${name}`,
        name,
        type: "text",
        value: current,
        placeholder: "All",
        list: `filter-${name}-list`,
        autocomplete: "off",
        spellcheck: "false",
      }),
      h("datalist", { id: `filter-${name}-list` }, ...values.map((v) => h("option", { value: v }))),
    );
  const date = (/** @type {string} */ name, /** @type {string} */ label, /** @type {string} */ value) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: `filter-${name}` }, label),
      h("input", { id: `filter-${name}`, name, type: "date", value }),
    );
  return h(
    "form",
    {
      class: "card filters",
      "aria-labelledby": "filters-h",
      onsubmit: (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        const data = new FormData(/** @type {HTMLFormElement} */ (e.currentTarget));
        const p = new URLSearchParams();
        for (const k of ["customer", "model", "workflow", "from", "to"]) {
          const v = String(data.get(k) ?? "").trim();
          if (v) p.set(k, v);
        }
        if ((p.get("from") && !p.get("to")) || (!p.get("from") && p.get("to"))) {
          const only = p.get("from") ?? p.get("to") ?? "";
          p.set("from", only);
          p.set("to", only);
        }
        if (metric !== "tokens") p.set("metric", metric);
        ctx.go(`#/usage?${p}`);
      },
    },
    h("h2", { id: "filters-h" }, "Filters"),
    h(
      "div",
      { class: "field-row" },
      suggest("customer", "Customer", choices.customers, filters.customer),
      select("model", "Model", choices.models, filters.model),
      select("workflow", "Workflow", choices.workflows, filters.workflow),
      date("from", "From (UTC)", fromDay),
      date("to", "To (UTC, inclusive)", toDay),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Apply filters"),
      h("a", { href: "#/usage", class: "button secondary" }, "Clear"),
    ),
  );
}

/**
 * @param {Metric} metric
 * @param {(m: Metric) => void} onChange
 */
function metricSwitch(metric, onChange) {
  return h(
    "fieldset",
    { class: "metric-switch" },
    h("legend", null, "Chart"),
    ...Object.entries(METRICS).map(([key, m]) =>
      h(
        "label",
        null,
        h("input", {
          type: "radio",
          name: "metric",
          value: key,
          checked: key === metric,
          onchange: () => onChange(/** @type {Metric} */ (key)),
        }),
        m.label,
      ),
    ),
  );
}

/**
 * @param {{ from: string, to: string, data: any[] }} daily
 * @param {Metric} metric
 * @param {boolean} ranged
 * @param {string} rangeError
 */
function dailyCard(daily, metric, ranged, rangeError) {
  const m = METRICS[metric];
  const bars = daily.data.map((r) => {
    const v = metricOf(r, metric);
    return { label: periodLabel(r.period_start, "day"), period: r.period_start, ...v };
  });
  const title = ranged ? `Daily ${m.label.toLowerCase()}` : `Daily ${m.label.toLowerCase()}, last 30 days`;
  return h(
    "section",
    { class: "card", "aria-labelledby": "daily-h", "data-testid": "daily" },
    h("h2", { id: "daily-h" }, title),
    rangeError ? h("p", { class: "note" }, rangeError) : null,
    barChart({
      id: "daily",
      title,
      description: `${bars.length} days from ${daily.from.slice(0, 10)}; total ${metricOf(totalsRow(daily.data), metric).text}.`,
      bars,
      metricLabel: m.label,
      width: chartWidth(720),
    }),
  );
}

/** @param {any[]} rows */
function totalsRow(rows) {
  const t = sumRows(rows);
  return {
    tokens_total: t.tokensTotal.toString(),
    requests: t.requests.toString(),
    cost: usdString(t.cost),
  };
}

/** @param {Metric} metric */
const changeKey = (metric) =>
  metric === "tokens" ? "tokens_total_pct" : metric === "requests" ? "requests_pct" : "cost_pct";

/**
 * @param {any} weekly
 * @param {Metric} metric
 */
function weeklyCard(weekly, metric) {
  const m = METRICS[metric];
  const bars = weekly.data.map((/** @type {any} */ r) => ({
    label: periodLabel(r.period_start, "week"),
    period: r.period_start,
    note: formatPercent(r.change?.[changeKey(metric)], { sign: true }),
    ...metricOf(r, metric),
  }));
  const last = weekly.data[weekly.data.length - 1];
  const change = last?.change?.[changeKey(metric)];
  const title = `Weekly ${m.label.toLowerCase()}, last 12 weeks`;
  return h(
    "section",
    { class: "card", "aria-labelledby": "weekly-h", "data-testid": "weekly" },
    h("h2", { id: "weekly-h" }, title),
    h(
      "p",
      { class: "kpi" },
      "This week so far: ",
      h("strong", null, last ? metricOf(last, metric).text : "—"),
      ", ",
      h(
        "span",
        { class: change > 0 ? "up" : change < 0 ? "down" : undefined, "data-testid": "weekly-change" },
        formatPercent(change, { sign: true }),
      ),
      " on the week before.",
    ),
    barChart({
      id: "weekly",
      title,
      description: `Weeks starting Monday; the change on the week before is in the table.`,
      bars,
      metricLabel: m.label,
      noteLabel: "Week over week",
      width: chartWidth(480),
    }),
  );
}

/**
 * @param {any} monthly
 * @param {Metric} metric
 */
function monthlyCard(monthly, metric) {
  const m = METRICS[metric];
  const bars = monthly.data.map((/** @type {any} */ r) => ({
    label: periodLabel(r.period_start, "month"),
    period: r.period_start,
    note: formatPercent(r.change?.[changeKey(metric)], { sign: true }),
    ...metricOf(r, metric),
  }));
  const trend =
    metric === "cost" ? monthly.trend?.cost : metric === "tokens" ? monthly.trend?.tokens_total : null;
  const title = `Monthly ${m.label.toLowerCase()}, last 12 months`;
  const perPeriod =
    trend && metric === "cost"
      ? `${trend.per_period.startsWith("-") ? "" : "+"}$${trend.per_period.replace(/^-/, "-")}`
      : trend
        ? `${trend.per_period >= 0 ? "+" : ""}${formatCount(Math.round(trend.per_period))}`
        : "";
  return h(
    "section",
    { class: "card", "aria-labelledby": "monthly-h", "data-testid": "monthly" },
    h("h2", { id: "monthly-h" }, title),
    h(
      "p",
      { class: "kpi" },
      "Trend: ",
      trend
        ? h("strong", { "data-testid": "monthly-trend" }, `${trend.direction} (${perPeriod} a month)`)
        : h("strong", null, "the least-squares line on the chart"),
    ),
    barChart({
      id: "monthly",
      title,
      description: `Months, with a dashed least-squares trend line.`,
      bars,
      metricLabel: m.label,
      noteLabel: "Month over month",
      trend: true,
      width: chartWidth(480),
    }),
  );
}

/** @param {any} models */
function modelsCard(models) {
  const totalTokens = models.total ? models.total.tokens_total : 0;
  return h(
    "section",
    { class: "card", "aria-labelledby": "models-h" },
    h("h2", { id: "models-h" }, "By model"),
    h("p", { class: "note" }, `Total ${formatCount(totalTokens)} tokens; share of tokens and of cost.`),
    table({
      caption: "Usage by model",
      testid: "models-table",
      empty: "No usage in this range.",
      rows: models.data,
      columns: [
        { label: "Model", cell: (r) => r.model ?? "(none)" },
        {
          label: "Share of tokens",
          cell: (r) =>
            meterBar({
              percent: r.share?.tokens_total_pct ?? 0,
              label: `${r.model ?? "(none)"} share of tokens`,
              text: formatPercent(r.share?.tokens_total_pct),
            }),
        },
        { label: "Tokens", num: true, cell: (r) => formatCount(r.tokens_total) },
        { label: "Requests", num: true, cell: (r) => formatCount(r.requests) },
        { label: "Cost", num: true, cell: (r) => formatMoney(parseUsd(r.cost)) },
        { label: "Share of cost", num: true, cell: (r) => formatPercent(r.share?.cost_pct) },
      ],
    }),
  );
}

/** @param {any[]} rows */
function byCost(rows) {
  return [...rows].sort((a, b) => {
    const d = parseUsd(b.cost) - parseUsd(a.cost);
    return d > 0n ? 1 : d < 0n ? -1 : 0;
  });
}

/** Rows a breakdown table shows; the export has them all. */
const TABLE_ROWS_MAX = 50;

/**
 * @param {any[]} rows
 * @param {string} what
 */
function topNote(rows, what) {
  return rows.length > TABLE_ROWS_MAX
    ? h(
        "p",
        { class: "note" },
        `The ${TABLE_ROWS_MAX} ${what} with the highest cost, of ${formatCount(rows.length)}; export grouped by ${what.replace(/s$/, "")} for all.`,
      )
    : null;
}

/** @param {any[]} rows */
function workflowsCard(rows) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "workflows-h" },
    h("h2", { id: "workflows-h" }, "By workflow"),
    topNote(rows, "workflows"),
    table({
      caption: "Usage by workflow",
      testid: "workflows-table",
      empty: "No usage in this range.",
      rows: byCost(rows).slice(0, TABLE_ROWS_MAX),
      columns: [
        {
          label: "Workflow",
          cell: (r) =>
            r.workflow === null
              ? "(none)"
              : h("a", { href: `#/workflows/${encodeURIComponent(r.workflow)}` }, r.workflow),
        },
        { label: "Steps", num: true, cell: (r) => formatCount(r.steps) },
        { label: "Tokens", num: true, cell: (r) => formatCount(r.tokens_total) },
        { label: "Cost", num: true, cell: (r) => formatMoney(parseUsd(r.cost)) },
      ],
    }),
  );
}

/** @param {any[]} rows */
function customersCard(rows) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "customers-h" },
    h("h2", { id: "customers-h" }, "By customer"),
    topNote(rows, "customers"),
    table({
      caption: "Usage by customer",
      testid: "customers-table",
      empty: "No usage in this range.",
      rows: byCost(rows).slice(0, TABLE_ROWS_MAX),
      columns: [
        {
          label: "Customer",
          cell: (r) =>
            r.customer === null
              ? "(none)"
              : h("a", { href: `#/customers/${encodeURIComponent(r.customer)}` }, r.customer),
        },
        { label: "Requests", num: true, cell: (r) => formatCount(r.requests) },
        { label: "Tokens", num: true, cell: (r) => formatCount(r.tokens_total) },
        { label: "Cost", num: true, cell: (r) => formatMoney(parseUsd(r.cost)) },
      ],
    }),
  );
}

/**
 * @param {import("../app.js").ViewContext} ctx
 * @param {{from: string, to: string}} range
 * @param {{customer: string, model: string, workflow: string}} f
 */
function exportCard(ctx, range, f) {
  const granularity = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "export-granularity" },
      ...[
        ["day", "Day"],
        ["hour", "Hour"],
        ["week", "Week"],
        ["month", "Month"],
        ["", "Whole range"],
      ].map(([v, l]) => h("option", { value: v }, l)),
    )
  );
  const groupBy = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "export-group" },
      ...[
        ["model", "Model"],
        ["", "Nothing"],
        ["workflow", "Workflow"],
        ["customer", "Customer"],
        ["customer,model", "Customer and model"],
      ].map(([v, l]) => h("option", { value: v }, l)),
    )
  );
  const code = h("code", { "data-testid": "export-url" });
  const status = h("p", { class: "note", role: "status" });
  const path = (/** @type {string} */ format) =>
    `/v1/usage${query({ ...range, granularity: granularity.value, group_by: groupBy.value, ...f, format })}`;
  const show = () => replace(code, `GET ${path("csv")}`);
  granularity.addEventListener("change", show);
  groupBy.addEventListener("change", show);
  show();
  const download = async (/** @type {"csv" | "json"} */ format) => {
    replace(status, "Preparing the file…");
    try {
      const blob = await ctx.api.blob(path(format));
      const url = URL.createObjectURL(blob);
      const a = h("a", {
        href: url,
        download: `tollgate-usage-${range.from.slice(0, 10)}-${range.to.slice(0, 10)}.${format}`,
      });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      replace(status, `Downloaded ${format.toUpperCase()} (${formatCount(blob.size)} bytes).`);
    } catch (err) {
      replace(status, `Export failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "export-h" },
    h("h2", { id: "export-h" }, "Export"),
    h("p", { class: "note" }, "The same rows as the API's usage report, for the range and filters above."),
    h(
      "div",
      { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: "export-granularity" }, "Rows per"), granularity),
      h("div", { class: "field" }, h("label", { for: "export-group" }, "Grouped by"), groupBy),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => download("csv") }, "Export CSV"),
      h("button", { type: "button", onclick: () => download("json") }, "Export JSON"),
    ),
    h("p", { class: "api-equivalent" }, "Same as ", code),
    status,
  );
}
