// The dashboard works without JavaScript; this adds: the phone menu, table cells labelled for
// the phone's stacked cards, "select all" on the dead letters page, and live updates (the
// regions marked data-live are fetched again every 10 s and replaced in place, with a pause).
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var PERIOD = 10000;

  function labelCells(root) {
    root.querySelectorAll("table.data").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (heads[i] && !td.hasAttribute("data-label")) td.setAttribute("data-label", heads[i]);
        });
      });
    });
  }

  function selectAll(root) {
    var all = root.querySelector("input[data-select-all]");
    if (!all) return;
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = all.checked; });
    });
  }

  function menu() {
    var button = document.querySelector("[data-menu-toggle]");
    if (!button) return;
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", open ? "true" : "false");
      document.documentElement.classList.toggle("menu-open", open);
    });
  }

  function live() {
    var control = document.querySelector("[data-live-control]");
    var regions = document.querySelectorAll("[data-live]");
    if (!control || !regions.length || !window.fetch || !window.DOMParser) return;
    var state = control.querySelector("[data-live-state]");
    var toggle = control.querySelector("[data-live-toggle]");
    var paused = false, timer = null, busy = false;
    control.hidden = false;

    function show(text) { if (state.textContent !== text) state.textContent = text; }
    function setPaused(value) {
      paused = value;
      toggle.setAttribute("aria-pressed", value ? "true" : "false");
      toggle.textContent = value ? toggle.dataset.resume : toggle.dataset.pause;
      show(value ? state.dataset.paused : state.dataset.on);
      document.documentElement.classList.toggle("live-paused", value);
      schedule();
    }
    // a person at work in a region (a ticked box, an open payload, focus) is not interrupted
    function busyHere() {
      var active = document.activeElement;
      return Array.prototype.some.call(document.querySelectorAll("[data-live]"), function (r) {
        return r.querySelector("input:checked, details[open]") || (active && active !== document.body && r.contains(active));
      });
    }
    function refresh() {
      if (paused || busy || document.hidden || busyHere()) return schedule();
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
        .then(function (resp) {
          if (!resp.ok || resp.redirected) throw new Error("HTTP " + resp.status);
          return resp.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live], [data-live-stamp]").forEach(function (old) {
            var name = old.getAttribute("data-live");
            var fresh = name !== null
              ? doc.querySelector('[data-live="' + name + '"]')
              : doc.querySelector("[data-live-stamp]");
            if (fresh && fresh.innerHTML !== old.innerHTML) {
              old.innerHTML = fresh.innerHTML;
              if (name !== null) { labelCells(old); selectAll(old); }
            }
          });
          document.documentElement.setAttribute("data-live-updated", String(Date.now()));
          show(state.dataset.on);
        })
        .catch(function () { show(state.dataset.failed); })
        .then(function () { busy = false; schedule(); });
    }
    function schedule() {
      if (timer) clearTimeout(timer);
      timer = paused ? null : setTimeout(refresh, PERIOD);
    }
    toggle.addEventListener("click", function () { setPaused(!paused); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(); });
    window.gatewayLive = { refresh: refresh, setPeriod: function (ms) { PERIOD = ms; schedule(); } };
    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    labelCells(document);
    selectAll(document);
    menu();
    live();
  });
})();
