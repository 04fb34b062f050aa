// Follows exports being built: polls each one's status (JSON) and moves its <progress> bar.
// Progressive enhancement: without JavaScript the page refreshes itself instead.
(function () {
  "use strict";

  var FAST = 1000, SLOW = 5000;

  function follow(box) {
    var url = box.getAttribute("data-export-status-url");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-export-status-text]");
    var row = box.closest("tr") || document;
    var ready = row.querySelector("[data-export-ready]");
    var waiting = row.querySelector("[data-export-waiting]");
    var lastText = text ? text.textContent : "";

    function show(state) {
      if (bar) {
        bar.value = state.progress;
        bar.textContent = state.progress_text;
      }
      var line = state.status_label + ": " + state.step_label;
      if (state.status === "ready") { line = state.status_label; }
      if (text && line !== lastText) {  // announce changes of step, not every percent
        text.textContent = line;
        lastText = line;
      }
    }

    function poll(delay) {
      window.setTimeout(function () {
        fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin",
                    cache: "no-store"})
          .then(function (response) {
            if (!response.ok || response.redirected) { throw new Error("status " + response.status); }
            return response.json();
          })
          .then(function (state) {
            show(state);
            if (!state.done) { poll(FAST); return; }
            if (state.status === "ready" && ready) {
              ready.hidden = false;
              if (waiting) { waiting.hidden = true; }
              var busy = document.querySelector("[data-export-busy]");
              if (busy) { busy.hidden = true; }
            } else {
              window.location.reload();  // failed or cancelled: the page explains what to do
            }
          })
          .catch(function () { poll(SLOW); });
      }, delay);
    }

    poll(FAST);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("[data-export-status-url]");
    for (var i = 0; i < boxes.length; i++) { follow(boxes[i]); }
  });
})();
