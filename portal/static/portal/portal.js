/* Small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  // The account switcher submits as soon as another account is chosen.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Forms that change something important ask first (revoking a key, switching tier).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // Copy buttons: copy the text of the element they point at.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      var text = target.value !== undefined ? target.value : target.textContent;
      var status = document.getElementById(button.getAttribute("aria-describedby"));
      function done(message) {
        button.textContent = message;
        if (status) { status.textContent = message === "Copied" ? "Key copied to the clipboard." : ""; }
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done("Copied"); }, function () { fallback(); });
      } else {
        fallback();
      }
      function fallback() {
        target.focus();
        target.select && target.select();
        try { document.execCommand("copy"); done("Copied"); } catch (e) { done("Press Ctrl+C"); }
      }
    });
  });
})();
