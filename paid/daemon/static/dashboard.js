// Refresh the page's content in place every few seconds: fetch the same
// URL, take its <main>, swap it in. The page works without this file.
"use strict";
(function () {
  const PERIOD_MS = 5000;
  async function refresh() {
    if (document.hidden) return;
    try {
      const answer = await fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" });
      if (!answer.ok) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("main");
      const stamp = page.getElementById("stamp");
      const main = document.getElementById("main");
      if (!fresh || !main) return;
      const focused = document.activeElement && document.activeElement.id;
      if (main.contains(document.activeElement) && document.activeElement.tagName !== "A") return;
      main.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      if (stamp) document.getElementById("stamp").replaceWith(document.importNode(stamp, true));
      if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    } catch (err) {
      // The daemon restarting or gone: the page keeps what it showed and tries again.
    }
  }
  setInterval(refresh, PERIOD_MS);
})();
