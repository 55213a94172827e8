// The QC centre's grade chart: one stacked bar per group (institution, modality or month), the
// studies graded 甲, 乙, 丙 and 废片. Data from the element's data-chart attribute (CSP: no
// inline script).
(function () {
  var el = document.getElementById("qc-chart");
  if (!el || typeof echarts === "undefined") return;
  var rows = JSON.parse(el.getAttribute("data-chart") || "[]");
  var zh = document.documentElement.lang !== "en";
  var names = zh ? ["甲", "乙", "丙", "废片"] : ["A", "B", "C", "Reject"];
  var colors = ["#13794b", "#7fb04f", "#d59a00", "#b0282d"];
  var chart = echarts.init(el, null, { renderer: "canvas", locale: zh ? "ZH" : "EN" });
  chart.setOption({
    animation: false,
    aria: { enabled: true },
    color: colors,
    grid: { left: 48, right: 16, top: 32, bottom: 64 },
    legend: { top: 0 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "category", data: rows.map(function (r) { return r[0]; }), axisLabel: { rotate: 30 } },
    yAxis: { type: "value", minInterval: 1 },
    series: names.map(function (n, i) {
      return { name: n, type: "bar", stack: "grades", data: rows.map(function (r) { return r[i + 1]; }) };
    })
  });
  window.addEventListener("resize", function () { chart.resize(); });
  el.setAttribute("data-drawn", "1");
})();
