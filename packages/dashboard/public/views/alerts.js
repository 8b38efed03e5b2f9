// @ts-check
/** Alerts raised, and each webhook endpoint's deliveries with their state and a redeliver button. */
import { h, replace } from "../dom.js";
import { formatDate, query } from "../format.js";
import { badge, failed, heading, loading, table } from "./common.js";
import { alertsTable } from "./customers.js";

const TYPES = ["limit.warning", "limit.critical", "limit.exceeded", "balance.low", "usage.summary"];
const STATES = ["pending", "delivered", "failed", "cancelled"];

/**
 * @param {import("../app.js").ViewContext} ctx
 */
export async function renderAlerts(ctx) {
  const { api, params } = ctx;
  const type = params.get("type") ?? "";
  const cursor = params.get("cursor") ?? "";
  const state = params.get("state") ?? "";
  replace(ctx.main, heading("Alerts & webhooks"), loading("Loading alerts…"));
  const settle = (/** @type {Promise<any>} */ p) =>
    p.then(
      (value) => ({ ok: true, value }),
      (error) => ({ ok: false, error }),
    );
  const [alerts, webhooks] = await Promise.all([
    settle(api.get(`/v1/alerts${query({ type, cursor, limit: 50 })}`)),
    settle(api.get("/v1/webhooks")),
  ]);
  const deliveries = webhooks.ok
    ? await Promise.all(
        webhooks.value.data.map((/** @type {any} */ w) =>
          settle(
            api.get(`/v1/webhooks/${encodeURIComponent(w.id)}/deliveries${query({ state, limit: 50 })}`),
          ),
        ),
      )
    : [];
  if (!ctx.isCurrent()) return;

  const go = (/** @type {Record<string, string>} */ next) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries({ type, state, ...next })) if (v) p.set(k, v);
    ctx.go(`#/alerts?${p}`);
  };
  const typeSelect = h(
    "select",
    {
      id: "alert-type",
      onchange: (/** @type {Event} */ e) =>
        go({ type: /** @type {HTMLSelectElement} */ (e.target).value, cursor: "" }),
    },
    h("option", { value: "" }, "All types"),
    ...TYPES.map((t) => h("option", { value: t, selected: t === type }, t)),
  );
  const stateSelect = h(
    "select",
    {
      id: "delivery-state",
      onchange: (/** @type {Event} */ e) => go({ state: /** @type {HTMLSelectElement} */ (e.target).value }),
    },
    h("option", { value: "" }, "All states"),
    ...STATES.map((st) => h("option", { value: st, selected: st === state }, st)),
  );

  replace(
    ctx.main,
    heading(
      "Alerts & webhooks",
      "Threshold and balance alerts, newest first, and what each endpoint received.",
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "alerts-h" },
      h("h2", { id: "alerts-h" }, "Alerts"),
      h(
        "div",
        { class: "field-row" },
        h("div", { class: "field" }, h("label", { for: "alert-type" }, "Type"), typeSelect),
      ),
      alerts.ok
        ? [
            alertsTable(alerts.value.data, "alerts-table"),
            h(
              "nav",
              { class: "pager", "aria-label": "Alert pages" },
              cursor
                ? h("a", { class: "button secondary", href: `#/alerts${query({ type, state })}` }, "Newest")
                : null,
              alerts.value.next_cursor
                ? h(
                    "a",
                    {
                      class: "button secondary",
                      href: `#/alerts${query({ type, state, cursor: alerts.value.next_cursor })}`,
                    },
                    "Older alerts",
                  )
                : null,
            ),
          ]
        : failed(alerts.error, "Alerts"),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "webhooks-h" },
      h("h2", { id: "webhooks-h" }, "Webhook deliveries"),
      h(
        "div",
        { class: "field-row" },
        h("div", { class: "field" }, h("label", { for: "delivery-state" }, "State"), stateSelect),
      ),
      !webhooks.ok
        ? failed(webhooks.error, "Webhooks")
        : webhooks.value.data.length === 0
          ? h("p", { class: "empty" }, "No webhook endpoints. Add one with POST /v1/webhooks.")
          : webhooks.value.data.map((/** @type {any} */ w, /** @type {number} */ i) =>
              webhookBlock(ctx, w, /** @type {any} */ (deliveries[i])),
            ),
    ),
  );
}

/**
 * @param {import("../app.js").ViewContext} ctx
 * @param {any} w
 * @param {{ok: boolean, value?: any, error?: unknown}} d
 */
function webhookBlock(ctx, w, d) {
  const status = h("p", { class: "note", role: "status" });
  return h(
    "div",
    { class: "webhook", "data-webhook": w.id },
    h("h3", null, w.description ? `${w.description} — ` : "", h("span", { class: "mono" }, w.url)),
    h("p", { class: "sub" }, `${w.id} · ${w.events.join(", ")}`),
    status,
    d.ok
      ? table({
          caption: `Deliveries to ${w.url}, newest first`,
          testid: `deliveries-${w.id}`,
          stack: true,
          empty: "No deliveries.",
          rows: d.value.data,
          columns: [
            { label: "Created (UTC)", cell: (x) => formatDate(x.created_at, { time: true }) },
            { label: "Event", cell: (x) => x.event_type },
            { label: "State", cell: (x) => h("span", { "data-state": x.state }, badge(x.state)) },
            { label: "Attempts", num: true, cell: (x) => String(x.attempts) },
            {
              label: "Last answer",
              cell: (x) =>
                x.last_status !== null && x.last_status !== undefined
                  ? `HTTP ${x.last_status}${x.last_latency_ms !== null ? ` in ${x.last_latency_ms} ms` : ""}`
                  : (x.last_error ?? "—"),
            },
            {
              label: "Next / delivered",
              cell: (x) =>
                x.delivered_at
                  ? `delivered ${formatDate(x.delivered_at, { time: true })}`
                  : x.next_attempt_at
                    ? `next ${formatDate(x.next_attempt_at, { time: true })}`
                    : "—",
            },
            {
              label: "Action",
              cell: (x) =>
                h(
                  "button",
                  {
                    type: "button",
                    class: "secondary small",
                    "aria-label": `Redeliver ${x.event_type} ${x.id}`,
                    "data-redeliver": x.id,
                    onclick: async (/** @type {MouseEvent} */ e) => {
                      const button = /** @type {HTMLButtonElement} */ (e.currentTarget);
                      button.disabled = true;
                      replace(status, `Queueing ${x.id} again…`);
                      try {
                        const res = await ctx.api.post(
                          `/v1/webhooks/${encodeURIComponent(w.id)}/deliveries/${encodeURIComponent(x.id)}/redeliver`,
                        );
                        replace(status, `Delivery ${x.id} queued again (${res?.state ?? "pending"}).`);
                        const cell = button.closest("tr")?.querySelector("[data-state]");
                        if (cell && res?.state) replace(cell, badge(res.state));
                        cell?.setAttribute("data-state", res?.state ?? "pending");
                      } catch (err) {
                        replace(
                          status,
                          `Redelivery failed: ${err instanceof Error ? err.message : String(err)}`,
                        );
                      } finally {
                        button.disabled = false;
                      }
                    },
                  },
                  "Redeliver",
                ),
            },
          ],
        })
      : failed(d.error, "Deliveries"),
  );
}
