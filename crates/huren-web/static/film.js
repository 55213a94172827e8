// The cloud film's image stepper: one image of a series at a time, changed with the slider,
// the buttons or the arrow keys (a phone cannot run the full viewer). Each series section
// carries its images' base URL and instance UIDs; the image is fetched when shown.
(function () {
  "use strict";
  function wire(section) {
    var ids = (section.dataset.ids || "").split(" ").filter(Boolean);
    var base = section.dataset.base || "";
    var img = section.querySelector("img");
    var range = section.querySelector("input[type=range]");
    var out = section.querySelector("output");
    if (!img || !range || ids.length < 2) return;
    function show(n) {
      n = Math.max(1, Math.min(ids.length, n));
      range.value = String(n);
      img.src = base + ids[n - 1];
      if (out) out.textContent = n + " / " + ids.length;
    }
    range.addEventListener("input", function () { show(parseInt(range.value, 10)); });
    section.querySelector(".prev").addEventListener("click", function () { show(parseInt(range.value, 10) - 1); });
    section.querySelector(".next").addEventListener("click", function () { show(parseInt(range.value, 10) + 1); });
    section.addEventListener("keydown", function (e) {
      if (e.key === "ArrowUp" || e.key === "PageUp") { show(parseInt(range.value, 10) - 1); e.preventDefault(); }
      if (e.key === "ArrowDown" || e.key === "PageDown") { show(parseInt(range.value, 10) + 1); e.preventDefault(); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".film-series").forEach(wire);
  });
})();
