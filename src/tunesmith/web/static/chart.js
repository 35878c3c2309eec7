/* A small SVG line chart (no library, nothing fetched): lineChart(element, [{points: [[x, y], ...], color}], opts). */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function ticks(lo, hi, n) {
    if (hi === lo) { hi = lo + 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function fmt(v) { return Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(1) : String(+v.toPrecision(3)); }
  window.lineChart = function (target, series, opts) {
    opts = opts || {};
    var box = target.getBoundingClientRect();
    var W = Math.max(box.width, 300), H = Math.max(box.height, 180), L = 54, R = 14, T = 12, B = 30;
    target.innerHTML = "";
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.label || "chart" }, target);
    var all = [];
    series.forEach(function (s) { all = all.concat(s.points); });
    if (!all.length) {
      var t = el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#8a93a3" }, svg);
      t.textContent = opts.empty || "no data yet";
      return svg;
    }
    var xs = all.map(function (p) { return p[0]; }), ys = all.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    var pad = (y1 - y0) * 0.08 || Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad;
    function sx(x) { return L + (x - x0) / (x1 - x0) * (W - L - R); }
    function sy(y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); }
    ticks(y0, y1, 5).forEach(function (v) {
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#edf0f4" }, svg);
      var t = el("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6473" }, svg);
      t.textContent = fmt(v);
    });
    ticks(x0, x1, 6).forEach(function (v) {
      var t = el("text", { x: sx(v), y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#5b6473" }, svg);
      t.textContent = fmt(v);
    });
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#9aa3b1" }, svg);
    var xl = el("text", { x: W - R, y: H - 4, "text-anchor": "end", "font-size": 11, fill: "#5b6473" }, svg);
    xl.textContent = opts.xLabel || "step";
    series.forEach(function (s) {
      if (!s.points.length) return;
      var d = s.points.map(function (p, i) { return (i ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1); }).join(" ");
      el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 2, "class": "series " + (s.name || "") }, svg);
      s.points.forEach(function (p) { el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color }, svg); });
    });
    return svg;
  };
})();
