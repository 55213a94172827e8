// Lab trend charts: one ECharts line per analyte, points coloured by institution, the
// reference range as a band. Data comes from the element's data-* attributes (CSP: no inline
// script). Chinese locale by the page's lang.
(function () {
  function draw(el) {
    var pts = JSON.parse(el.getAttribute("data-series") || "[]");
    var low = parseFloat(el.getAttribute("data-low"));
    var high = parseFloat(el.getAttribute("data-high"));
    var zh = document.documentElement.lang !== "en";
    var chart = echarts.init(el, null, { renderer: "canvas", locale: zh ? "ZH" : "EN" });
    var insts = [];
    pts.forEach(function (p) { if (insts.indexOf(p[2]) < 0) insts.push(p[2]); });
    var series = [{
      type: "line", name: el.getAttribute("aria-label"), showSymbol: false,
      data: pts.map(function (p) { return [p[0], p[1]]; }), lineStyle: { color: "#8896a8" },
      markArea: isNaN(low) || isNaN(high) ? undefined : {
        silent: true, itemStyle: { color: "rgba(19,121,75,0.08)" }, data: [[{ yAxis: low }, { yAxis: high }]]
      }
    }];
    insts.forEach(function (i) {
      series.push({ type: "scatter", name: i, symbolSize: 9,
        data: pts.filter(function (p) { return p[2] === i; }).map(function (p) { return [p[0], p[1]]; }) });
    });
    chart.setOption({
      animation: false,
      aria: { enabled: true },
      grid: { left: 48, right: 16, top: 28, bottom: 28 },
      legend: { data: insts, top: 0 },
      tooltip: { trigger: "item" },
      xAxis: { type: "time" },
      yAxis: { type: "value", name: el.getAttribute("data-unit") || "", scale: true },
      series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function all() {
    if (typeof echarts === "undefined") return;
    document.querySelectorAll(".trend[data-series]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
