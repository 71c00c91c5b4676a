// Dashboard: refresh the figures from /organizer/stats.json while the page is open.
// The server already rendered every figure, so without this script the page is complete.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || !window.fetch) return;
  var url = root.getAttribute("data-stats-url");
  var every = (parseInt(root.getAttribute("data-refresh-seconds"), 10) || 15) * 1000;
  var status = document.getElementById("dashboard-status");

  function lookup(stats, path) {
    return path.split(".").reduce(function (obj, key) {
      return obj == null ? undefined : obj[key];
    }, stats);
  }

  function refresh() {
    fetch(url, { headers: { "Accept": "application/json" }, cache: "no-cache", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (stats) {
        if (!stats) return;
        var changed = 0;
        document.querySelectorAll("[data-stat]").forEach(function (el) {
          var value = lookup(stats, el.getAttribute("data-stat"));
          if (value === undefined) return;
          if (el.tagName === "METER") { if (el.value !== Number(value)) { el.value = Number(value); changed += 1; } return; }
          if (String(value) !== el.textContent) { el.textContent = String(value); changed += 1; }
        });
        if (status && changed) status.textContent = "Figures updated.";
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }
  window.setInterval(refresh, every);
})();
