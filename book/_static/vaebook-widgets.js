/* Loaded between RequireJS and the ipywidgets HTML manager (book/_ext/vaebook_static.py), with the
 * vendored files and with the CDN alike.
 *
 * 1. The manager's modules are named AMD modules. Each finds its icon fonts next to its own URL,
 *    which RequireJS derives from the module name, relative to the page: the fonts were requested
 *    from e.g. notebooks/@jupyter-widgets/... and failed. Map the names to the folder that holds
 *    embed-amd.js and the fonts: this script's data-manager-folder, relative to its own URL
 *    (vendor/html-manager/ in _static, or the package's dist/ folder on the CDN).
 * 2. ipywidgets typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); the book loads
 *    MathJax 3, so every label threw. Forward those calls to MathJax 3.
 * 3. The theme's Font Awesome script watches the page and swaps every <i class="fa ..."> added to
 *    it for an <svg>, the widgets' icons too. The Play button then threw when it updated its <i>,
 *    and the jslink'ed figure stopped following the slider. Let it swap only the icons already in
 *    the page when it starts (the theme's); the widgets' icons use the manager's own fonts.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var folder = new URL(script.dataset.managerFolder || "vendor/html-manager/", script.src).href;
  var names = [
    "@jupyter-widgets/base",
    "@jupyter-widgets/base7",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/controls7",
    "@jupyter-widgets/html-manager",
    "@jupyter-widgets/html-manager/dist/libembed-amd",
  ];
  var paths = {};
  names.forEach(function (name) {
    paths[name] = folder + name.split("/").pop();
  });
  window.__jupyter_widgets_assets_path__ = folder;
  window.requirejs.config({ paths: paths });

  // Runs before the theme's deferred fontawesome.js, which reads this when it starts.
  window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {
    observeMutations: false,
  });

  // Deferred scripts (MathJax) have run by DOMContentLoaded; widgets render later, on load.
  document.addEventListener("DOMContentLoaded", function () {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub) {
      return;
    }
    mathjax.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (!mathjax.startup || !Array.isArray(job) || job[0] !== "Typeset") {
            return;
          }
          mathjax.startup.promise.then(function () {
            return mathjax.typesetPromise(job[2] ? [job[2]] : undefined);
          });
        });
      },
    };
  });
})();
