// Registration form: when the chosen role is full, say at once that the registration will
// join the waiting list. The server already says so in the page (the note above the form and
// the role list's labels), so without this script nothing is lost.
(function () {
  "use strict";
  var note = document.getElementById("role-waitlist-note");
  var select = document.getElementById("role");
  if (!note || !select) return;
  var full = (note.getAttribute("data-full-roles") || "").split(",").filter(Boolean);

  function update() {
    var option = select.options[select.selectedIndex];
    if (option && full.indexOf(select.value) !== -1) {
      var label = option.textContent.replace(/\s*\(.*\)\s*$/, "");
      note.textContent = "Places for " + label + " are taken: your registration will join the waiting list.";
      note.hidden = false;
    } else {
      note.textContent = "";
      note.hidden = true;
    }
  }

  select.addEventListener("change", update);
  update();
})();
