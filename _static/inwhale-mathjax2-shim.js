/* inwhale: let ipywidgets typeset with MathJax 3.
 *
 * The ipywidgets 8 embedder (_static/widgets/embed-amd.js) typesets widget labels with the
 * MathJax 2 call MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]). The book loads
 * MathJax 3, which has no Hub, so every widget label threw "Cannot read properties of
 * undefined (reading 'Queue')". This adds a small Hub.Queue that forwards to MathJax 3's
 * typesetPromise, and re-attaches it when MathJax 3 replaces window.MathJax at start-up.
 * JB loads this file on every page; it does nothing on pages without widgets.
 */
(function () {
  "use strict";
  var pending = [];

  function ready(mj) {
    return mj && typeof mj.typesetPromise === "function" && mj.startup && mj.startup.promise;
  }

  function typeset(element) {
    var mj = window.MathJax;
    if (ready(mj)) {
      mj.startup.promise
        .then(function () { return mj.typesetPromise([element]); })
        .catch(function (err) { console.warn("MathJax typeset failed", err); });
    } else {
      pending.push(element);
    }
  }

  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
          typeset(job[2]);
        }
      }
    },
  };

  function attach(mj) {
    if (mj && typeof mj === "object" && !mj.Hub) {
      try { mj.Hub = hub; } catch (e) { /* frozen object: nothing to do */ }
    }
    if (ready(mj) && pending.length) {
      var todo = pending;
      pending = [];
      todo.forEach(typeset);
    }
    return mj;
  }

  var current = attach(window.MathJax || {});
  try {
    Object.defineProperty(window, "MathJax", {
      configurable: true,
      enumerable: true,
      get: function () { return current; },
      set: function (value) { current = attach(value); },
    });
  } catch (e) {
    window.MathJax = current;
  }
  // MathJax 3 fills in typesetPromise after it is assigned; flush anything queued early.
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { attach(mj); });
    }
  });
})();
