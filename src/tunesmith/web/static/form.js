/* The new-run form: Form and YAML tabs kept in step through the server (the CLI's own loader validates). */
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  var yamlText = document.getElementById("yaml-text");
  var problems = document.getElementById("yaml-problems");
  function formBody() {
    var pairs = [];
    new FormData(form).forEach(function (value, key) { if (key[0] !== "_") pairs.push([key, value]); });
    return new URLSearchParams(pairs);
  }
  function refreshYaml() {
    return fetch("/api/config/yaml", { method: "POST", body: formBody(), credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (out) { yamlText.value = out.yaml; problems.textContent = out.problems.join("\n"); });
  }
  function setFields(values) {
    Object.keys(values).forEach(function (name) {
      var inputs = form.querySelectorAll('[name="' + name + '"]');
      inputs.forEach(function (input) {
        if (input.type === "hidden" || input.readOnly) return;
        if (input.type === "checkbox") input.checked = values[name] === "true";
        else input.value = values[name];
      });
    });
  }
  function show(mode) {
    document.getElementById("mode").value = mode;
    document.getElementById("form-view").hidden = mode !== "form";
    document.getElementById("yaml-view").hidden = mode !== "yaml";
    document.getElementById("tab-form").className = mode === "form" ? "on" : "";
    document.getElementById("tab-yaml").className = mode === "yaml" ? "on" : "";
  }
  document.getElementById("tab-yaml").addEventListener("click", function () { refreshYaml().then(function () { show("yaml"); }); });
  document.getElementById("tab-form").addEventListener("click", function () { show("form"); });
  document.getElementById("yaml-apply").addEventListener("click", function () {
    fetch("/api/config/fields", { method: "POST", body: yamlText.value, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (out) {
        problems.textContent = out.problems.join("\n");
        if (out.values) { setFields(out.values); show("form"); }
      });
  });
})();
