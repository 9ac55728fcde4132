// Starts Swagger UI on /docs (routes/docs.py) with this service's own OpenAPI document: a file,
// not an inline script, so the page keeps the apps' CSP. No ?url= or ?configUrl= from the
// address bar is honoured (queryConfigEnabled stays false), so the page documents this API only.

/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: false,
  queryConfigEnabled: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
