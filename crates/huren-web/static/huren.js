// huren's page script (no inline scripts under the CSP): the copy button of the medical-record
// sentence. htmx swaps fragments in, so the handler listens on the document.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest && ev.target.closest("button.copy");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  var text = el.textContent.trim();
  var done = function () { b.textContent = b.getAttribute("data-done") || "OK"; };
  // Without clipboard access the text is left selected, for Ctrl+C.
  var fallback = function () {
    select(el);
    try { if (document.execCommand("copy")) done(); } catch (e) { /* left selected */ }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
function select(el) {
  var r = document.createRange();
  r.selectNodeContents(el);
  var s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}
