/* Starts Swagger UI on /api/docs. The page passes the spec's address and any configuration in data-
   attributes, never inline script, so its Content-Security-Policy can forbid inline code. */
(function () {
  "use strict";
  var container = document.getElementById("swagger-ui-container");
  var config = { url: container.dataset.specUrl, dom_id: "#swagger-ui-container" };
  var extra = JSON.parse(container.dataset.config || "{}");
  for (var name in extra) {
    if (Object.prototype.hasOwnProperty.call(extra, name)) {
      config[name] = extra[name];
    }
  }
  window.ui = SwaggerUIBundle(config);
})();
