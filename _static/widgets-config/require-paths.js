/* inwhale: tell require.js where the vendored ipywidgets embedder lives.
 *
 * embed-amd.js (in _static/widgets/, loaded right after this file on pages with widget
 * state; see nb_ipywidgets_js in _config.yml) finds its Font Awesome fonts next to its own
 * AMD module URL, "@jupyter-widgets/html-manager/dist/...". Unconfigured, require.js puts
 * that under the page's folder (book/part1/@jupyter-widgets/...), and every font 404s. This
 * maps the module path to _static/widgets/, found from this script's own URL.
 */
(function () {
  "use strict";
  var self = document.currentScript && document.currentScript.src;
  if (!self || !window.require || typeof window.require.config !== "function") {
    return;
  }
  var widgets = self.replace(/widgets-config\/[^/]*$/, "widgets");
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": widgets } });
})();
