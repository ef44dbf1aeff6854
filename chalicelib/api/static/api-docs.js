/*
 * Starts Redoc on GET /v1/docs. A served file, not an inline script, so the
 * page's Content-Security-Policy can refuse all inline script. The nonce of
 * this script element is the one the policy allows for style elements; Redoc
 * puts it on the <style> elements it creates (styled-components).
 */
(function () {
  "use strict";
  var root = document.getElementById("redoc");
  var nonce = document.currentScript ? document.currentScript.nonce : undefined;
  Redoc.init(root.getAttribute("data-spec-url"), { nonce: nonce }, root);
})();
