// Live updates: fetch the server-rendered status block every few seconds and swap it
// in. Without JS the page refreshes itself (<noscript> meta refresh); when a fetch fails
// the old view is dimmed so nobody trusts a stale green light.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  var every = 3000, last = live.innerHTML, busy = false;
  document.addEventListener("submit", function () { busy = true; });
  function openPreviews() {
    var open = {};
    live.querySelectorAll("details[open]").forEach(function (d) {
      var li = d.closest("[data-job]"); if (li) open[li.dataset.job] = true;
    });
    return open;
  }
  function stale(on) {
    live.classList.toggle("stale", on);
    var note = document.getElementById("stale-note");
    if (on && !note) {
      note = document.createElement("p"); note.id = "stale-note"; note.className = "stale-note";
      note.textContent = live.dataset.lost; live.parentNode.insertBefore(note, live);
    } else if (!on && note) { note.remove(); }
  }
  function tick() {
    if (busy || document.hidden) { setTimeout(tick, every); return; }
    fetch(live.dataset.src, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        stale(false);
        if (html !== last) {
          var open = openPreviews();
          live.innerHTML = html; last = html;
          live.querySelectorAll("[data-job]").forEach(function (li) {
            if (open[li.dataset.job]) { var d = li.querySelector("details"); if (d) d.open = true; }
          });
        }
      })
      .catch(function () { stale(true); })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
