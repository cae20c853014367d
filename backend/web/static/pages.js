/* VAS trend chart on the participant page. Data comes from a JSON block, never inline script,
   so the page's Content-Security-Policy can forbid inline code. Chart.js is served from
   /static/vendor: nothing is fetched from the internet. */
(function () {
  "use strict";
  var canvas = document.getElementById("vas-chart");
  var source = document.getElementById("vas-data");
  if (!canvas || !source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [{
        label: "VAS (0–10)",
        data: data.values,
        borderColor: "#1a5fb4",
        backgroundColor: "#1a5fb4",
        pointRadius: 4,
        pointStyle: "rectRot",
        tension: 0.2
      }]
    },
    options: {
      animation: reduceMotion ? false : { duration: 300 },
      maintainAspectRatio: false,
      scales: {
        y: { min: 0, max: 10, title: { display: true, text: "VAS (0 not active – 10 extremely active)" } },
        x: { title: { display: true, text: "Date (" + data.zone + ")" } }
      },
      plugins: { legend: { display: false } }
    }
  });
})();
