// The dashboard's one script and one style sheet, served from /dashboard/static/ so the
// Content-Security-Policy can forbid inline scripts and styles. The script is plain browser JavaScript:
// the app page's live parts follow the app's event stream (EventSource on /dashboard/apps/{app}/events)
// and refetch the server-rendered table a change concerns; the logs tail follows /dashboard/apps/{app}/logs.
// Text from the server goes into the page as textContent, or as HTML the server rendered and escaped.

import { MACHINE_STATES } from "../http/backend.js";

export const DASHBOARD_JS = `"use strict";
(function () {
  var page = document.querySelector("[data-app]");
  if (!page) return;
  var app = page.getAttribute("data-app");
  var base = "/dashboard/apps/" + encodeURIComponent(app);
  var STATES = ${JSON.stringify(MACHINE_STATES)};
  var PARTS = { release: "releases", scaling: "scaling", volume: "volumes" };
  var timers = {};
  // States from events of machines not on the page yet: applied once a refetch brings their rows.
  var pending = {};

  function refresh(part) {
    if (timers[part]) return;
    timers[part] = setTimeout(function () {
      timers[part] = undefined;
      fetch(base + "/parts/" + part, { credentials: "same-origin" }).then(function (res) {
        if (res.status === 401) { window.location.assign("/dashboard/login"); return; }
        if (!res.ok) return;
        return res.text().then(function (markup) {
          var target = document.getElementById(part);
          if (target) target.innerHTML = markup;
          if (part === "machines") {
            var waiting = pending;
            pending = {};
            for (var id in waiting) setState(id, waiting[id]);
          }
        });
      });
    }, 1000);
  }

  // A state change of a listed machine is shown from the event itself; anything else (a new machine,
  // an event that is not a state) refetches the table, at most once a second: reads spend the org's
  // machine_get budget.
  function rowOf(id) {
    var rows = document.querySelectorAll("tr[data-machine-id]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-machine-id") === id) return rows[i];
    }
    return null;
  }

  function setState(id, state, time) {
    var row = rowOf(id);
    var cell = row && row.querySelector(".state");
    if (!cell) return false;
    cell.textContent = state;
    cell.className = "state state-" + state;
    var updated = row.querySelector(".updated");
    if (updated && time) updated.textContent = time;
    return true;
  }

  function showMachine(event) {
    var id = String(event.subject || "").slice(app.length + 1);
    var state = String(event.type).slice("machine.".length);
    var known = STATES.indexOf(state) >= 0;
    if (known && setState(id, state, event.time)) return;
    if (known) pending[id] = state;
    refresh("machines");
  }

  var status = document.getElementById("live-status");
  var since = page.getAttribute("data-since");
  var events = new EventSource(base + "/events" + (since ? "?last_event_id=" + encodeURIComponent(since) : ""));
  events.onopen = function () { if (status) status.textContent = "live"; };
  events.onerror = function () {
    // EventSource gives up on an answer other than 200 (the session ended: logout, a gateway restart):
    // a refetch then finds the 401 and sends the browser to the login.
    var closed = events.readyState === EventSource.CLOSED;
    if (status) status.textContent = closed ? "disconnected" : "reconnecting";
    if (closed) refresh("machines");
  };
  events.onmessage = function (message) {
    var event;
    try { event = JSON.parse(message.data); } catch (err) { return; }
    var kind = String(event.type).split(".")[0];
    if (kind === "machine") showMachine(event);
    else if (PARTS[kind]) refresh(PARTS[kind]);
  };

  var logs = document.getElementById("logs");
  if (logs) {
    var tail = new EventSource(base + "/logs");
    tail.addEventListener("log", function (message) {
      var entry;
      try { entry = JSON.parse(message.data); } catch (err) { return; }
      var line = document.createElement("div");
      line.className = "log-line log-" + (entry.level === "error" ? "error" : "info");
      line.textContent = entry.timestamp + " " + entry.instance + " " + entry.message;
      logs.appendChild(line);
      while (logs.childNodes.length > 200) logs.removeChild(logs.firstChild);
      logs.scrollTop = logs.scrollHeight;
    });
  }
})();
`;

export const DASHBOARD_CSS = `:root { color-scheme: light; font-family: system-ui, sans-serif; font-size: 15px; }
body { margin: 0; background: #f6f7f9; color: #1d2330; }
header { display: flex; align-items: center; gap: 1.5rem; padding: 0.7rem 1.5rem; background: #1d2330; color: #fff; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header form { margin-left: auto; }
main { padding: 1rem 1.5rem 3rem; max-width: 72rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
th { font-size: 0.8rem; text-transform: uppercase; color: #5b6475; }
.empty { color: #5b6475; font-style: italic; }
.state { font-weight: 600; }
.state-started, .status-succeeded, .status-ready { color: #11763b; }
.state-stopped, .state-suspended, .state-destroyed { color: #5b6475; }
.state-failed, .status-failed { color: #b42318; }
.live { font-size: 0.8rem; color: #5b6475; }
#logs { background: #11151c; color: #d7dde8; font-family: ui-monospace, monospace; font-size: 0.8rem;
  height: 16rem; overflow-y: auto; padding: 0.5rem; white-space: pre-wrap; }
.log-error { color: #ff9b8f; }
.login { max-width: 28rem; margin: 4rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 6px; }
.login textarea { width: 100%; box-sizing: border-box; font-family: ui-monospace, monospace; }
.error { color: #b42318; font-weight: 600; }
button { cursor: pointer; }
`;
