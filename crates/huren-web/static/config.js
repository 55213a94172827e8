// The configuration import: a file chosen is read into the form's text (the page also works
// by pasting the text); the label and first day show only for a catalog version.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.import-form");
    if (!form) return;
    var kind = form.querySelector("select[name=kind]");
    var only = form.querySelector(".catalog-only");
    function shown() { only.hidden = kind.value !== "catalog"; }
    kind.addEventListener("change", shown);
    shown();
    form.querySelector(".file-pick").addEventListener("change", function (e) {
      var f = e.target.files && e.target.files[0];
      if (!f) return;
      f.text().then(function (t) { form.querySelector("textarea[name=text]").value = t; });
    });
  });
})();
