/* The console works without this file. With it and htmx (forms and links inside <main> are boosted), an
   answer that never came (network) or a server error (5xx) leaves the page as it was, with everything the
   person typed, and says so in the alert at the top of the page. 4xx answers are pages with the error at
   the field: htmx swaps them in like any other page (htmx-config in base.html). */
(function () {
  "use strict";
  function alertBox() {
    return document.getElementById("net-alert");
  }
  function say(text) {
    var box = alertBox();
    if (!box) {
      return;
    }
    box.querySelector("p").textContent = text;
    box.hidden = false;
    box.focus();
  }
  document.addEventListener("htmx:beforeRequest", function () {
    var box = alertBox();
    if (box) {
      box.hidden = true;
    }
  });
  document.addEventListener("htmx:sendError", function () {
    say(document.documentElement.getAttribute("data-network-error"));
  });
  document.addEventListener("htmx:responseError", function () {
    say(document.documentElement.getAttribute("data-server-error"));
  });
})();
