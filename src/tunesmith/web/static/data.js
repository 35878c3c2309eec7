/* The data page's upload: the file is the request body (size-limited and name-checked by the server). */
(function () {
  "use strict";
  var button = document.getElementById("upload");
  if (!button) return;
  button.addEventListener("click", function () {
    var input = document.getElementById("upload-file"), status = document.getElementById("upload-status");
    if (!input.files.length) { status.textContent = "choose a file first"; return; }
    var file = input.files[0];
    status.textContent = "uploading ...";
    fetch("/api/data/upload?name=" + encodeURIComponent(file.name), { method: "POST", body: file, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
      .then(function (res) {
        if (!res[0]) { status.textContent = res[1].error; return; }
        // counts and problems at once; the token-length histogram loads the tokenizer (Inspect)
        window.location = "/data?file=" + encodeURIComponent(res[1].name);
      });
  });
})();
