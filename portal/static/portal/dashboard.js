/* Dashboard charts: data comes from the page (json_script), Chart.js is vendored. */
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }

  var PALETTE = ["#0f7b55", "#6cc497", "#1d5f8a", "#8cbfe0", "#b7791f", "#e8c15a", "#6b4fa3", "#b9a4dd"];
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4a5550";
  Chart.defaults.borderColor = "#e3e8e5";
  if (reduceMotion) { Chart.defaults.animation = false; }

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function number(value, unit) {
    if (value === null || value === undefined) { return "no data"; }
    var digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 2 : 4;
    return value.toLocaleString("en-GB", { maximumFractionDigits: digits }) + " " + unit;
  }

  function stacked(canvasId, usage, key, unit) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) { return; }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: usage.labels,
        datasets: usage.datasets.map(function (d, i) {
          return { label: d.label, data: d[key], backgroundColor: PALETTE[i % PALETTE.length], borderWidth: 0,
                   borderRadius: 2, maxBarThickness: 42 };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: unit } }
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + number(c.parsed.y, unit); } } }
        }
      }
    });
  }

  var usage = data("usage-data");
  if (usage) {
    stacked("chart-co2e", usage, "co2e", usage.co2e_unit + " CO₂e");
    stacked("chart-energy", usage, "energy", usage.energy_unit);
  }

  var grid = data("intensity-data");
  var canvas = document.getElementById("chart-intensity");
  if (grid && canvas) {
    new Chart(canvas, {
      data: {
        labels: grid.labels,
        datasets: [
          { type: "line", label: "Grid intensity (gCO₂e/kWh)", data: grid.values, yAxisID: "y", borderColor: "#1d5f8a",
            backgroundColor: "rgba(29, 95, 138, 0.08)", fill: true, borderWidth: 1.5, pointRadius: 0, tension: 0.25,
            spanGaps: false, order: 1 },
          { type: "bar", label: "Batch job window", data: grid.windows, yAxisID: "windows",
            backgroundColor: "rgba(15, 123, 85, 0.28)", borderWidth: 0, barPercentage: 1, categoryPercentage: 1,
            order: 2 }
        ]
      },
      options: {
        responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 16, callback: function (value) {
            // Hourly labels read "3 Nov 14:00"; the axis shows the day, the tooltip the hour.
            return this.getLabelForValue(value).replace(/ \d\d:00$/, "");
          } } },
          y: { beginAtZero: true, title: { display: true, text: "gCO₂e/kWh" } },
          windows: { display: false, min: 0, max: 1 }
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
          tooltip: {
            filter: function (item) { return item.datasetIndex === 0 || item.raw === 1; },
            callbacks: {
              label: function (c) {
                return c.datasetIndex === 0 ? "Intensity: " + number(c.parsed.y, "gCO₂e/kWh") : "Batch job window";
              }
            }
          }
        }
      }
    });
  }
})();
