// Live counters: count up from 0 when they come into view, then refresh from /api/stats.
// The server already rendered the right figures, so without this script the page is complete.
(function () {
  "use strict";
  var list = document.getElementById("counters");
  if (!list || !window.fetch) return;

  var url = list.getAttribute("data-stats-url");
  var etag = list.getAttribute("data-etag") ? '"' + list.getAttribute("data-etag") + '"' : null;
  var every = (parseInt(list.getAttribute("data-refresh-seconds"), 10) || 15) * 1000;
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var values = list.querySelectorAll("[data-counter]");
  var status = document.getElementById("counters-status");

  function animate(el, from, to) {
    if (reduceMotion || from === to) { el.textContent = String(to); return; }
    var start = null, duration = 1200;
    function step(ts) {
      if (start === null) start = ts;
      var t = Math.min(1, (ts - start) / duration);
      var eased = 1 - Math.pow(1 - t, 3);
      el.textContent = String(Math.round(from + (to - from) * eased));
      if (t < 1) window.requestAnimationFrame(step);
    }
    window.requestAnimationFrame(step);
  }

  function countUp() {
    values.forEach(function (el) { animate(el, 0, parseInt(el.textContent, 10) || 0); });
  }

  if ("IntersectionObserver" in window && !reduceMotion) {
    var seen = false;
    var observer = new IntersectionObserver(function (entries) {
      if (!seen && entries.some(function (e) { return e.isIntersecting; })) {
        seen = true;
        observer.disconnect();
        countUp();
      }
    });
    observer.observe(list);
  }

  function refresh() {
    var headers = { "Accept": "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 304 || !response.ok) return null;
        etag = response.headers.get("ETag") || etag;
        return response.json();
      })
      .then(function (stats) {
        if (!stats) return;
        var changed = [];
        values.forEach(function (el) {
          var key = el.getAttribute("data-counter");
          var next = stats[key];
          var now = parseInt(el.textContent, 10) || 0;
          if (typeof next === "number" && next !== now) {
            animate(el, now, next);
            changed.push(next + " " + el.parentNode.nextElementSibling.textContent);
          }
        });
        document.querySelectorAll("[data-attendance]").forEach(function (el) {
          var next = (stats.by_attendance || {})[el.getAttribute("data-attendance")];
          if (typeof next === "number") el.textContent = String(next);
        });
        if (status && changed.length) status.textContent = "Updated: " + changed.join("; ");
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }

  window.setInterval(refresh, every);
})();
