// Registration and self-service forms: show only the questions asked of the chosen role.
// Every question is in the page, each saying whom it is for, and the server ignores answers
// to questions not asked of the role, so without this script nothing is lost.
(function () {
  "use strict";
  var select = document.getElementById("role");
  if (!select) return;
  var questions = document.querySelectorAll(".question[data-roles]");

  function update() {
    for (var i = 0; i < questions.length; i++) {
      var roles = questions[i].getAttribute("data-roles").split(",");
      questions[i].hidden = select.value !== "" && roles.indexOf(select.value) === -1;
    }
  }

  select.addEventListener("change", update);
  update();
})();
