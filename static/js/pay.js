// The card form of the payment page: Stripe.js shows the card fields and turns the card into
// a single-use token, which the form sends to necreg (the number never reaches it). When the
// bank asks for 3-D Secure, the page comes back with the payment's client secret and
// Stripe.js finishes it here. What necreg records comes from Stripe's webhook, not from here.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") return;
  var stripe = Stripe(form.dataset.key);
  var errors = document.getElementById("card-errors");
  var button = form.querySelector("button[type=submit]");

  function fail(message) {
    errors.textContent = message || "The card could not be read: please check it.";
    button.disabled = false;
  }

  if (form.dataset.clientSecret) {
    // The bank wants the cardholder to confirm: Stripe.js asks, then we go back to the
    // registration, which shows the payment once Stripe has told necreg.
    button.disabled = true;
    stripe.confirmCardPayment(form.dataset.clientSecret).then(function (result) {
      if (result.error) {
        fail(result.error.message || "The bank did not confirm the payment.");
      } else {
        window.location.assign(form.dataset.done);
      }
    });
    return;
  }

  var card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    stripe.createToken(card).then(function (result) {
      if (result.error || !result.token) {
        fail(result.error && result.error.message);
        return;
      }
      form.elements.stripe_token.value = result.token.id;
      form.submit();
    });
  });
})();
