// @ts-check
/**
 * The dashboard shell: sign-in with a workspace API key, navigation, and a hash router
 * (#/usage, #/customers, #/customers/{id}, #/alerts) so that every view has a URL, the back button
 * works, and a filtered view can be shared.
 */
import { Api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { renderAlerts } from "./views/alerts.js";
import { renderCustomer, renderCustomers } from "./views/customers.js";
import { renderUsage } from "./views/usage.js";
import { renderWorkflow } from "./views/workflow.js";

/**
 * @typedef {{ api: Api, main: HTMLElement, params: URLSearchParams, go: (hash: string) => void,
 *   isCurrent: () => boolean }} ViewContext
 */

const NAV = [
  { href: "#/usage", label: "Usage", match: /^\/($|usage$|workflows\/)/ },
  { href: "#/customers", label: "Customers", match: /^\/customers/ },
  { href: "#/alerts", label: "Alerts & webhooks", match: /^\/alerts/ },
];

/** @type {Api | null} */
let api = Api.fromSession();
let renderCount = 0;

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
const session = /** @type {HTMLElement} */ (document.getElementById("session"));

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/usage";
  const [path = "/usage", search = ""] = raw.split("?");
  return { path, params: new URLSearchParams(search) };
}

function renderNav(path) {
  if (!api) {
    replace(nav);
    replace(session);
    return;
  }
  replace(
    nav,
    h(
      "ul",
      null,
      ...NAV.map((n) =>
        h(
          "li",
          null,
          h("a", { href: n.href, "aria-current": n.match.test(path) ? "page" : undefined }, n.label),
        ),
      ),
    ),
  );
  replace(
    session,
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          Api.forget();
          api = null;
          route();
        },
      },
      "Sign out",
    ),
  );
}

function renderSignIn() {
  document.title = "Sign in · Tollgate";
  const error = h("p", { class: "error", role: "alert", id: "signin-error" });
  const input = /** @type {HTMLInputElement} */ (
    h("input", {
      id: "api-key",
      name: "api-key",
      type: "password",
      autocomplete: "current-password",
      required: true,
      spellcheck: "false",
      "aria-describedby": "api-key-help signin-error",
    })
  );
  const button = /** @type {HTMLButtonElement} */ (h("button", { type: "submit" }, "Sign in"));
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        const candidate = new Api(input.value.trim());
        button.disabled = true;
        replace(error);
        try {
          await candidate.get("/v1/customers?limit=1");
          candidate.save();
          api = candidate;
          route();
        } catch (err) {
          replace(
            error,
            err instanceof ApiError && err.status === 401
              ? "That key was not accepted. Check it and try again."
              : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`,
          );
          input.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { tabindex: "-1" }, "Sign in to Tollgate"),
    h("label", { for: "api-key" }, "Workspace API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "help" },
      "An admin or service key of your workspace (tg_…). It is kept in this browser tab only, until you sign out or close the tab.",
    ),
    button,
    error,
  );
  replace(main, form);
  input.focus();
}

/**
 * Renders the view the hash names. `moveFocus`: after a navigation inside the page, focus goes to
 * the new view's heading, as a page load would put it at the top; a fresh page load leaves it be
 * (so that the skip link comes first).
 * @param {boolean} [moveFocus]
 */
async function route(moveFocus = true) {
  const { path, params } = parseHash();
  renderNav(path);
  if (!api) {
    renderSignIn();
    return;
  }
  const mine = ++renderCount;
  /** @type {ViewContext} */
  const ctx = {
    api,
    main,
    params,
    go: (hash) => {
      window.location.hash = hash;
    },
    isCurrent: () => mine === renderCount,
  };
  main.setAttribute("aria-busy", "true");
  try {
    const customer = /^\/customers\/(.+)$/.exec(path);
    const workflow = /^\/workflows\/(.+)$/.exec(path);
    if (customer) await renderCustomer(ctx, decodeURIComponent(customer[1] ?? ""));
    else if (workflow) await renderWorkflow(ctx, decodeURIComponent(workflow[1] ?? ""));
    else if (path.startsWith("/customers")) await renderCustomers(ctx);
    else if (path.startsWith("/alerts")) await renderAlerts(ctx);
    else await renderUsage(ctx);
  } catch (err) {
    if (!ctx.isCurrent()) return;
    if (err instanceof ApiError && err.status === 401) {
      Api.forget();
      api = null;
      route();
      return;
    }
    replace(
      main,
      h("h1", { tabindex: "-1" }, "Something went wrong"),
      h("p", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err)),
    );
  } finally {
    if (ctx.isCurrent()) main.setAttribute("aria-busy", "false");
  }
  if (!ctx.isCurrent() || !moveFocus) return;
  // Move focus to the new view's heading, unless a control inside kept it.
  if (!main.contains(document.activeElement) || document.activeElement === main) {
    const heading = main.querySelector("h1");
    if (heading instanceof HTMLElement) heading.focus();
  }
}

// The skip link moves focus without touching the hash (the hash is the router's).
document.getElementById("skip")?.addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => route(true));
route(false);
