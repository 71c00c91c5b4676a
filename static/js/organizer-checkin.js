// Check-in at the door: post each scan with fetch and show the answer without reloading,
// then empty and refocus the input for the next person. Without this script the form posts
// and the page shows the answer after a redirect.
(function () {
  "use strict";
  var form = document.getElementById("checkin-form");
  var input = document.getElementById("code");
  var out = document.getElementById("checkin-result");
  if (!form || !input || !out || !window.fetch || !window.FormData) return;

  var TITLES = {
    checked_in: "Checked in", already: "Already checked in", unknown: "Unknown code",
    cancelled: "Cancelled", waitlisted: "Not confirmed", invalid: "No code",
    not_signed_up: "No place here"
  };
  var busy = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The same plain form the server renders: undo posts and comes back to this page.
  function undoForm(attendeeId) {
    var undo = el("form");
    undo.method = "post";
    undo.action = form.getAttribute("data-undo-url").replace("/0/", "/" + attendeeId + "/");
    [["csrf_token", form.elements.csrf_token.value], ["back", "check-in"]].forEach(function (pair) {
      var input = el("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      undo.appendChild(input);
    });
    var button = el("button", "button button-secondary button-small", "Undo this check-in");
    button.type = "submit";
    undo.appendChild(button);
    return undo;
  }

  function show(answer) {
    var box = el("section", "checkin-result checkin-" + answer.outcome);
    box.appendChild(el("h2", "", TITLES[answer.outcome] || "Check-in"));
    box.appendChild(el("p", "message", answer.message));
    var a = answer.attendee;
    if (a && (answer.outcome === "checked_in" || answer.outcome === "already")) {
      box.appendChild(el("p", "badge-name", a.badge_name));
      box.appendChild(el("p", "role", a.role_label));
      box.appendChild(el("p", "", a.name + " · " + a.code + (a.institution ? " · " + a.institution : "")));
      if (!answer.item) box.appendChild(undoForm(a.id)); // a door's check-in stays
    }
    out.replaceChildren(box);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    var data = new FormData(form);
    input.value = "";
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) {
          // Signed out or the form expired: fall back to the plain form post.
          throw new Error("not json");
        }
        return response.json();
      })
      .then(show)
      .catch(function () {
        out.replaceChildren(el("p", "error", "Could not reach the server, or your session ended. Reload the page to continue."));
      })
      .then(function () { busy = false; input.focus(); });
  });
})();
