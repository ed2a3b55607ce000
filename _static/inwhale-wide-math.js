/* inwhale: an inline formula wider than its line scrolls instead of running off the page.
 *
 * MathJax 3 does not break inline formulas across lines, so on a phone a long one ran past
 * the content column. After MathJax has typeset the page (and on resize), each inline
 * formula wider than its paragraph gets the class "inwhale-wide-math", which
 * _static/inwhale-layout.css turns into a box with its own horizontal scroll bar. Short
 * formulas are left alone, so their baseline is untouched.
 */
(function () {
  "use strict";

  function mark() {
    var all = document.querySelectorAll('article mjx-container:not([display="true"])');
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      el.classList.remove("inwhale-wide-math");
      var parent = el.parentElement;
      while (parent && getComputedStyle(parent).display === "inline") {
        parent = parent.parentElement;
      }
      if (parent && el.getBoundingClientRect().width > parent.clientWidth) {
        el.classList.add("inwhale-wide-math");
      }
    }
  }

  function whenTypeset() {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(mark);
    } else {
      setTimeout(whenTypeset, 200);
    }
  }

  document.addEventListener("DOMContentLoaded", whenTypeset);
  window.addEventListener("resize", function () {
    clearTimeout(mark.timer);
    mark.timer = setTimeout(mark, 150);
  });
})();
