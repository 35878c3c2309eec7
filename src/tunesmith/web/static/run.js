/* The run page: poll /api/runs/<id>/status, redraw stages, numbers, the loss chart and the log; stop / resume. */
(function () {
  "use strict";
  var runId = document.getElementById("run-script").dataset.run;
  var base = "/api/runs/" + encodeURIComponent(runId);
  function $(id) { return document.getElementById(id); }
  function dur(s) {
    if (s === null || s === undefined) return "-";
    s = Math.round(s); var m = Math.floor(s / 60), h = Math.floor(m / 60);
    return h ? h + "h" + String(m % 60).padStart(2, "0") + "m" : m + "m" + String(s % 60).padStart(2, "0") + "s";
  }
  function num(v, d) { return v === null || v === undefined ? "-" : (+v).toFixed(d); }
  function render(st) {
    var state = $("state"); state.textContent = st.state; state.className = "state " + st.state;
    $("stages").innerHTML = st.stages.map(function (s) {
      return '<li class="' + s.status + '">' + s.name + " <em>" + s.status + "</em></li>";
    }).join("");
    var tr = st.training;
    $("step").textContent = tr.step ? tr.step + (tr.total_steps ? " / " + tr.total_steps : "") : "-";
    $("bar-fill").style.width = (tr.total_steps ? Math.min(100, 100 * tr.step / tr.total_steps) : 0) + "%";
    $("tps").textContent = num(tr.tokens_per_s, 0);
    $("elapsed").textContent = dur(tr.elapsed_s);
    $("eta").textContent = st.state === "running" && tr.eta_s !== null ? dur(tr.eta_s) : (tr.total_steps && tr.step >= tr.total_steps ? "done" : "-");
    $("last-loss").textContent = tr.loss.length ? num(tr.loss[tr.loss.length - 1][1], 4) : "-";
    $("last-val").textContent = tr.val_loss.length ? num(tr.val_loss[tr.val_loss.length - 1][1], 4) : "-";
    lineChart($("loss-chart"), [
      { name: "train", points: tr.loss, color: "#2458c6" },
      { name: "val", points: tr.val_loss, color: "#d9822b" }
    ], { label: "loss by step", empty: st.state === "running" ? "waiting for the first logged step" : "no training steps logged" });
    var log = $("log"), atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.textContent = st.log;
    if (atEnd) log.scrollTop = log.scrollHeight;
    $("stop").hidden = !st.can_stop;
    $("resume").hidden = !st.can_resume;
    $("report-link").hidden = !st.has_report;
    $("chat-link").hidden = !st.has_report;
    return st.state === "running";
  }
  function poll() {
    fetch(base + "/status", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (st) {
      var again = render(st);
      setTimeout(poll, again ? 1500 : 6000);
    }).catch(function () { setTimeout(poll, 4000); });
  }
  function act(what) {
    $("action-msg").textContent = what === "stop" ? "stopping ..." : "resuming ...";
    fetch(base + "/" + what, { method: "POST", credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) {
        $("action-msg").textContent = r.ok ? "" : body.error;
        if (r.ok) render(body);
      });
    });
  }
  $("stop").addEventListener("click", function () { act("stop"); });
  $("resume").addEventListener("click", function () { act("resume"); });
  poll();
})();
