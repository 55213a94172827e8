// The recognition rate per group as bars (percent). Data from the element's data-chart
// attribute (CSP: no inline script).
(function () {
  var el = document.getElementById("stats-chart");
  if (!el || typeof echarts === "undefined") return;
  var rows = JSON.parse(el.getAttribute("data-chart") || "[]");
  var zh = document.documentElement.lang !== "en";
  var chart = echarts.init(el, null, { renderer: "canvas", locale: zh ? "ZH" : "EN" });
  chart.setOption({
    animation: false,
    aria: { enabled: true },
    color: ["#13794b"],
    grid: { left: 48, right: 16, top: 24, bottom: 64 },
    tooltip: { trigger: "axis", valueFormatter: function (v) { return v + "%"; } },
    xAxis: { type: "category", data: rows.map(function (r) { return r[0]; }), axisLabel: { rotate: 30 } },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: [{ name: el.getAttribute("aria-label"), type: "bar", data: rows.map(function (r) { return r[1]; }) }]
  });
  window.addEventListener("resize", function () { chart.resize(); });
  el.setAttribute("data-drawn", "1");
})();
