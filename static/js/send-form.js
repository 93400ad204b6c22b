// Show progress while a send is on its way, and block a second click meanwhile:
// Vonage can take up to VONAGE_TIMEOUT seconds to reply. (A second POST would be
// harmless anyway: the form's idempotency key makes the server return the first
// message.)
(function () {
  "use strict";

  function attach(form) {
    var button = form.querySelector("button[type=submit]");
    if (button === null) {
      return;
    }
    var label = button.textContent;
    form.addEventListener("submit", function () {
      button.disabled = true;
      button.textContent = "Sending\u2026";
    });
    // A page restored by the Back button keeps the disabled state: undo it.
    window.addEventListener("pageshow", function () {
      button.disabled = false;
      button.textContent = label;
    });
  }

  function attachAll() {
    var forms = document.querySelectorAll("form[data-busy-on-submit]");
    for (var index = 0; index < forms.length; index += 1) {
      attach(forms[index]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachAll);
  } else {
    attachAll();
  }
})();
