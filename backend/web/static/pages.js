/* VAS trend chart on the participant page. Data comes from a JSON block, never inline script,
   so the page's Content-Security-Policy can forbid inline code. Chart.js is served from
   /static/vendor: nothing is fetched from the internet.
   The x axis is time: each answer sits at its local time in days since 1970-01-01, so dates keep
   their real distances (no category axis spacing them evenly); segments are straight (no smoothing)
   and y is fixed to the protocol's scale. */
(function () {
  "use strict";
  var canvas = document.getElementById("vas-chart");
  var source = document.getElementById("vas-data");
  if (!canvas || !source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var xs = data.points.map(function (p) { return p.x; });
  // A day either side, so the first and last answers do not sit on the chart's edge.
  var first = Math.floor(Math.min.apply(null, xs)) - 1;
  var last = Math.ceil(Math.max.apply(null, xs)) + 1;
  var span = last - first;
  var step = span <= 10 ? 1 : span <= 21 ? 2 : span <= 70 ? 7 : span <= 140 ? 14 : 28;
  function dayText(day) {
    return new Date(Math.round(day) * 86400000).toISOString().slice(0, 10);
  }
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  new Chart(canvas, {
    type: "line",
    data: {
      datasets: [{
        label: "VAS (" + data.min + "–" + data.max + ")",
        data: data.points,
        borderColor: "#1a5fb4",
        backgroundColor: "#1a5fb4",
        pointRadius: 4,
        pointStyle: "rectRot",
        tension: 0,
        cubicInterpolationMode: "default"
      }]
    },
    options: {
      animation: reduceMotion ? false : { duration: 300 },
      maintainAspectRatio: false,
      scales: {
        y: { min: data.min, max: data.max, ticks: { stepSize: 1 },
             title: { display: true, text: "VAS (" + data.min + " not active – " + data.max + " extremely active)" } },
        x: { type: "linear", min: first, max: last,
             ticks: { stepSize: step, callback: dayText, maxRotation: 0, autoSkip: true },
             title: { display: true, text: "Date (" + data.zone + ")" } }
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: {
          title: function (items) { return items[0].raw.when; },
          label: function (item) { return "VAS " + item.raw.y; }
        } }
      }
    }
  });
})();
