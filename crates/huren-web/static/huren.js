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

// Images in one click: OHIF starts in a hidden frame while the doctor reads the page (its
// start-up, not the archive, is most of the time to a first image), and "打开影像" shows the
// frame and moves the running viewer to the study (a route change inside OHIF, no reload).
// A click with a modifier key, or a page without the frame, opens the link as usual.
(function () {
  var overlay = document.getElementById("viewer-overlay");
  var frame = document.getElementById("viewer-frame");
  if (!overlay || !frame) return;
  var opener = null;
  var warm = function () { if (!frame.getAttribute("src")) frame.setAttribute("src", frame.getAttribute("data-warm")); };
  if (document.readyState === "complete") setTimeout(warm, 200);
  else window.addEventListener("load", function () { setTimeout(warm, 200); });
  function show(study) {
    // OHIF's own words in the page's language (its i18n reads `lng` from the address).
    var lng = document.documentElement.lang === "en" ? "en" : "zh";
    var path = "/viewer/viewer?StudyInstanceUIDs=" + encodeURIComponent(study) + "&lng=" + lng;
    var w = null;
    try { w = frame.contentWindow; } catch (e) { w = null; }
    var booted = w && w.location && w.location.pathname.indexOf("/viewer") === 0;
    if (booted) {
      w.history.pushState({}, "", path);
      w.dispatchEvent(new PopStateEvent("popstate", { state: {} }));
    } else {
      frame.setAttribute("src", path);
    }
    overlay.hidden = false;
    document.body.classList.add("viewing");
    overlay.querySelector(".viewer-close").focus();
  }
  function hide() {
    overlay.hidden = true;
    document.body.classList.remove("viewing");
    if (opener) opener.focus();
  }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[data-study]");
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    opener = a;
    show(a.getAttribute("data-study"));
  });
  overlay.querySelector(".viewer-close").addEventListener("click", hide);
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && !overlay.hidden) hide();
  });
})();
