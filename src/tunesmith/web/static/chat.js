/* The chat playground: each message answered by the base model and the tuned adapter, side by side; each model
   sees the earlier turns with its own answers. */
(function () {
  "use strict";
  var form = document.getElementById("chat-form");
  if (!form) return;
  var transcript = document.getElementById("transcript");
  var earlier = [];
  function div(cls, text) { var d = document.createElement("div"); d.className = cls; d.textContent = text; return d; }
  document.getElementById("new-chat").addEventListener("click", function () {
    earlier = []; transcript.innerHTML = "";
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = document.getElementById("message"), text = box.value.trim();
    if (!text) return;
    var asTrained = document.getElementById("as-trained");
    var turn = div("turn", ""), base = div("answer base", "…"), tuned = div("answer tuned", "…");
    turn.appendChild(div("you", "you: " + text)); turn.appendChild(base); turn.appendChild(tuned);
    transcript.appendChild(turn);
    var status = document.getElementById("chat-status"), send = document.getElementById("send");
    status.textContent = "generating (the first message loads the model) ..."; send.disabled = true;
    fetch("/api/chat", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ run: form.dataset.run, message: text, earlier: earlier,
                             as_trained: asTrained ? asTrained.checked : false,
                             max_new_tokens: +document.getElementById("max-new").value })
    }).then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); }).then(function (res) {
      if (!res[0]) { turn.remove(); status.textContent = res[1].error || JSON.stringify(res[1]); return; }
      base.textContent = res[1].base || "(empty answer)"; tuned.textContent = res[1].tuned || "(empty answer)";
      earlier.push({ user: text, base: res[1].base, tuned: res[1].tuned });
      status.textContent = ""; box.value = "";
    }).catch(function (e) { status.textContent = String(e); }).finally(function () { send.disabled = false; });
  });
})();
