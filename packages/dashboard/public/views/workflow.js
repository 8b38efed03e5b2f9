// @ts-check
/** A workflow's runs (GET /v1/workflows/{id}/runs): steps, tokens and cost of each run, in the order they started. */
import { h, replace } from "../dom.js";
import { formatCount, formatDate, formatMoney, parseUsd, query } from "../format.js";
import { failed, heading, loading, table } from "./common.js";

const PAGE = 50;

/**
 * @param {import("../app.js").ViewContext} ctx
 * @param {string} id
 */
export async function renderWorkflow(ctx, id) {
  const { api, params } = ctx;
  const cursor = params.get("cursor") ?? "";
  const customer = params.get("customer") ?? "";
  replace(ctx.main, heading(`Workflow ${id}`), loading("Loading runs…"));
  let runs;
  try {
    runs = await api.get(
      `/v1/workflows/${encodeURIComponent(id)}/runs${query({ customer, cursor, limit: PAGE })}`,
    );
  } catch (err) {
    if (!ctx.isCurrent()) return;
    replace(ctx.main, heading(`Workflow ${id}`), failed(err, "Runs"));
    return;
  }
  if (!ctx.isCurrent()) return;
  const base = `#/workflows/${encodeURIComponent(id)}`;
  replace(
    ctx.main,
    h("p", { class: "crumbs" }, h("a", { href: "#/usage" }, "Usage"), " / workflow ", id),
    heading(
      `Workflow ${id}`,
      `Runs${customer ? ` of customer ${customer}` : ""}, with their steps, tokens and cost.`,
    ),
    h(
      "section",
      { class: "card" },
      table({
        caption: "Runs",
        testid: "workflow-runs",
        empty: "No runs recorded (events of this workflow carry no run dimension).",
        stack: true,
        rows: runs.data,
        columns: [
          { label: "Run", cell: (r) => r.run },
          {
            label: "Customer",
            cell: (r) =>
              r.customer
                ? h("a", { href: `#/customers/${encodeURIComponent(r.customer)}` }, r.customer)
                : "—",
          },
          { label: "Steps", num: true, cell: (r) => formatCount(r.total_steps) },
          { label: "Requests", num: true, cell: (r) => formatCount(r.requests ?? 0) },
          { label: "Tokens", num: true, cell: (r) => formatCount(r.tokens_total ?? 0) },
          { label: "Cost", num: true, cell: (r) => formatMoney(parseUsd(r.cost)) },
          { label: "Started (UTC)", cell: (r) => formatDate(r.started_at, { time: true }) },
          { label: "Ended (UTC)", cell: (r) => formatDate(r.ended_at, { time: true }) },
        ],
      }),
      h(
        "nav",
        { class: "pager", "aria-label": "Run pages" },
        cursor
          ? h("a", { class: "button secondary", href: `${base}${query({ customer })}` }, "First page")
          : null,
        runs.next_cursor
          ? h(
              "a",
              { class: "button secondary", href: `${base}${query({ customer, cursor: runs.next_cursor })}` },
              "Next page",
            )
          : null,
      ),
    ),
  );
}
