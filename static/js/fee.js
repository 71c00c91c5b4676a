// The registration form: say which fee will apply as the person chooses their role, early
// career and attendance. The server decides the fee again when the form is sent (and a code
// can lower it); without this script the page lists every price and says the first that fits.
(function () {
  "use strict";
  var box = document.getElementById("fees");
  var out = document.getElementById("fee-output");
  if (!box || !out || !window.JSON) return;
  var prices = JSON.parse(box.getAttribute("data-prices") || "[]");
  var form = box.form || box.closest("form");

  function chosen() {
    var role = form.elements.role ? form.elements.role.value : "";
    var early = form.elements.early_career ? form.elements.early_career.checked : false;
    var attendance = "in_person";
    var radios = form.querySelectorAll("input[name=attendance]");
    radios.forEach(function (r) { if (r.checked) attendance = r.value; });
    return { role: role, early: early, attendance: attendance };
  }

  function update() {
    var c = chosen();
    if (!c.role) { out.textContent = "choose how you attend to see it"; return; }
    var match = null;
    for (var i = 0; i < prices.length && !match; i += 1) {
      var p = prices[i];
      if ((p.roles.length === 0 || p.roles.indexOf(c.role) >= 0) &&
          (p.early_career === null || p.early_career === c.early) &&
          (p.attendance === null || p.attendance === c.attendance)) match = p;
    }
    out.textContent = match ? match.name + ", " + match.amount + " (before any code)" : "free";
  }

  form.addEventListener("change", update);
  update();
})();
