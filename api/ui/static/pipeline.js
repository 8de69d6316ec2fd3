// The Pipeline page's charts (Chart.js, vendored): leads per day and speed to lead by source.
// The figures come from the page itself (<script type="application/json" id="pipeline-charts">)
// and every chart has its data table on the page: without this script nothing is lost.
(function () {
  "use strict";

  var BLUE = "#0172ad";
  var GREEN = "#1e7d32";
  var AMBER = "#9a5b00";

  function data() {
    var el = document.getElementById("pipeline-charts");
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  // A bar chart on the canvas: each series is [label, values, colour]; "axis" titles the value
  // axis; "across" draws the bars across the page (a row per label).
  function bars(canvas, labels, series, axis, across) {
    var value = { beginAtZero: true, title: { display: true, text: axis } };
    var scales = across ? { x: value } : { y: value };
    if (!across) value.ticks = { precision: 0 };
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: labels,
        datasets: series.map(function (s) {
          return { label: s[0], data: s[1], backgroundColor: s[2] };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: across ? "y" : "x",
        plugins: { legend: { position: "bottom" } },
        scales: scales
      }
    });
  }

  function trend(figures) {
    var canvas = document.getElementById("trend-chart");
    if (!canvas || !figures) return;
    bars(canvas, figures.labels, [
      ["Leads", figures.leads, BLUE],
      ["Of them converted", figures.converted, GREEN]
    ], "Leads", false);
  }

  function speed(figures) {
    var canvas = document.getElementById("speed-chart");
    if (!canvas || !figures || !figures.labels.length) return;
    bars(canvas, figures.labels, [
      ["Median (p50)", figures.p50, BLUE],
      ["p90", figures.p90, AMBER]
    ], "Speed to lead (" + figures.unit + ")", true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Chart === "undefined") return;
    var figures = data();
    if (!figures) return;
    trend(figures.trend);
    speed(figures.speed);
  });
})();
