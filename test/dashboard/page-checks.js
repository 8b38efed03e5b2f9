// Runs inside the dashboard page (dashboard.test.ts evaluates this file, then calls one function).
globalThis.tollgateChecks = {
  /** Inputs, selects and buttons without an accessible name. */
  unlabelled() {
    return [...document.querySelectorAll("input, select, button")]
      .filter(
        (el) =>
          !(
            el.labels?.length ||
            el.getAttribute("aria-label") ||
            (el.tagName === "BUTTON" && el.textContent?.trim())
          ),
      )
      .map((el) => el.outerHTML.slice(0, 80));
  },

  /** Visible text whose colour has less than 4.5:1 contrast with the first opaque background behind it. */
  lowContrast() {
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = (c) => {
      const [r, g, b] = c.slice(0, 3).map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c;
      }
      return [255, 255, 255];
    };
    const out = [];
    let checked = 0;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || !n.textContent?.trim() || el.closest("svg, .skip-link, .visually-hidden")) continue;
      if (!el.offsetParent && getComputedStyle(el).position !== "fixed") continue;
      const a = lum(rgb(getComputedStyle(el).color));
      const b = lum(background(el));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      checked++;
      if (ratio < 4.5)
        out.push(`${ratio.toFixed(2)} ${el.tagName}.${el.className}: ${n.textContent.trim().slice(0, 30)}`);
    }
    return { out, checked };
  },
};
