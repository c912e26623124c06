// onedoor staff page: the only script. The case page listens to its server-sent events and
// swaps in the region the server re-rendered; everything else works without JavaScript.
"use strict";

(function () {
  var live = document.getElementById("case-live");
  var status = document.getElementById("live-status");
  if (!live || !status || !window.EventSource) {
    return;
  }
  var say = function (text, lost) {
    status.textContent = text;
    status.classList.toggle("lost", !!lost);
  };
  var url = live.getAttribute("data-stream") + "?v=" + encodeURIComponent(live.getAttribute("data-version"));
  var source = new EventSource(url);
  source.addEventListener("open", function () {
    say(status.getAttribute("data-on"), false);
  });
  source.addEventListener("error", function () {
    // EventSource reconnects by itself, sending Last-Event-ID: only say it is trying.
    say(status.getAttribute("data-lost"), true);
  });
  source.addEventListener("case", function (event) {
    var before = Number(live.getAttribute("data-version")) || 0;
    // The server escaped every user-typed value when it rendered this fragment.
    live.innerHTML = event.data;
    live.setAttribute("data-version", event.lastEventId);
    var rows = live.querySelectorAll("table.events tbody tr");
    for (var i = 0; i < rows.length; i++) {
      if (Number(rows[i].getAttribute("data-version")) > before) {
        rows[i].classList.add("fresh");
      }
    }
    var time = new Date().toTimeString().slice(0, 5);
    say(status.getAttribute("data-updated") + " " + time, false);
  });
})();
