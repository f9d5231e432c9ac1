/**
 * The dashboard's page: one HTML document with its CSS and script inline,
 * no build step and no framework (docs/decisions.md, "The dashboard page
 * has no front-end framework"). It opens `/api/stream` (Server-Sent Events),
 * renders each snapshot with plain DOM calls, derives rates from two
 * snapshots, and adds each event to the timeline as it arrives.
 *
 * Kept as a string in a module (not an .html file beside it) so that the
 * compiled package carries it without a copy step.
 */

/** The page served at `/`. */
export const page: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-corps dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg: #0f1419; --panel: #171d24; --line: #2a323c; --text: #d6dde5; --dim: #8593a3;
          --ok: #4cc38a; --warn: #e5b54a; --bad: #ef6b6b; --accent: #5aa9e6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
         background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px;
           border-bottom: 1px solid var(--line); }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; }
  #status { color: var(--dim); }
  #status.live::before { content: "● "; color: var(--ok); }
  #status.down::before { content: "● "; color: var(--bad); }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(280px, 1.2fr); gap: 16px; padding: 16px 20px; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin-bottom: 16px; }
  h2 { font-size: 13px; margin: 0 0 8px; color: var(--accent); font-weight: 600; }
  h3 { font-size: 12px; margin: 12px 0 6px; color: var(--dim); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--dim); font-weight: normal; }
  th:first-child, td:first-child, td.l, th.l { text-align: left; }
  tr.method td { color: var(--dim); font-size: 12px; }
  tr.method td:first-child { padding-left: 24px; }
  .kind { color: var(--dim); }
  .err { color: var(--bad); }
  .nested { margin-left: 18px; border-left: 2px solid var(--line); padding-left: 12px; }
  .bar { position: relative; height: 10px; width: 120px; background: #222a33; border-radius: 3px; display: inline-block; vertical-align: middle; }
  .bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ok); border-radius: 3px; }
  .bar.hot > span { background: var(--warn); }
  .state-serving { color: var(--ok); } .state-restarting, .state-starting, .state-draining { color: var(--warn); }
  .state-stopped { color: var(--bad); }
  svg.spark { width: 90px; height: 18px; vertical-align: middle; }
  svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
  #timeline { list-style: none; margin: 0; padding: 0; max-height: 70vh; overflow: auto; }
  #timeline li { padding: 4px 0; border-bottom: 1px solid var(--line); }
  #timeline time { color: var(--dim); margin-right: 6px; }
  .tag { font-weight: 600; margin-right: 6px; }
  .tag.warn { color: var(--warn); } .tag.bad { color: var(--bad); } .tag.ok { color: var(--ok); } .tag.info { color: var(--accent); }
  #strip { width: 100%; height: 26px; display: block; margin-bottom: 8px; }
  .empty { color: var(--dim); font-style: italic; }
</style>
</head>
<body>
<header>
  <h1>effect-corps</h1>
  <span id="corps-name"></span>
  <span id="status">connecting…</span>
  <span id="at" class="kind"></span>
</header>
<main>
  <div>
    <section><h2>Corps</h2><div id="tree"><p class="empty">waiting for the first snapshot…</p></div></section>
    <section><h2>Envs</h2><div id="envs"></div></section>
  </div>
  <div>
    <section>
      <h2>Timeline</h2>
      <svg id="strip" viewBox="0 0 300 26" preserveAspectRatio="none"></svg>
      <ul id="timeline"></ul>
    </section>
  </div>
</main>
<script>
(function () {
"use strict";
// Inside a function: names like "history" would otherwise collide with the window's own.
var previous = null;          // the snapshot before the current one, for rates
var history = {};             // worker path -> recent rates (sparklines)
var seen = {};                // event identity -> true (events arrive live and again in snapshots)
var events = [];              // the timeline, oldest first
var HISTORY = 60, TIMELINE = 200, STRIP_MILLIS = 5 * 60 * 1000;

function el(tag, attrs, children) {
  var node = document.createElement(tag);
  if (attrs) for (var k in attrs) {
    if (k === "text") node.textContent = attrs[k];
    else if (k === "className") node.className = attrs[k];
    else node.setAttribute(k, attrs[k]);
  }
  (children || []).forEach(function (c) { if (c != null) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
  return node;
}
function ms(v) { return v === 0 ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : v >= 1 ? v.toFixed(1) + " ms" : (v * 1000).toFixed(0) + " µs"; }
function mb(v) { return v == null ? "–" : (v / 1048576).toFixed(1) + " MB"; }
function sum(values) { return values.reduce(function (a, b) { return a + b; }, 0); }
function failuresOf(method) { return sum(Object.keys(method.failures).map(function (k) { return method.failures[k]; })); }

function workersByPath(corps, prefix, into) {
  var path = prefix + corps.name;
  corps.workers.forEach(function (w) { into[path + "/" + w.name] = w; });
  corps.children.forEach(function (c) { workersByPath(c, path + "/", into); });
  return into;
}

function rateOf(path, worker, now) {
  if (!previous) return 0;
  var before = previous.workers[path];
  var seconds = (now.at - previous.at) / 1000;
  if (!before || seconds <= 0) return 0;
  var calls = sum(worker.methods.map(function (m) { return m.calls; }));
  var then = sum(before.methods.map(function (m) { return m.calls; }));
  return Math.max(0, (calls - then) / seconds);
}

function sparkline(values) {
  var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 " + HISTORY + " 18");
  svg.setAttribute("preserveAspectRatio", "none");
  var top = Math.max.apply(null, values.concat([1]));
  var points = values.map(function (v, i) { return (HISTORY - values.length + i) + "," + (17 - (v / top) * 16).toFixed(1); });
  var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.appendChild(line);
  return svg;
}

function renderCorps(corps, prefix, snapshot) {
  var path = prefix + corps.name;
  var box = el("div", { className: prefix === "" ? "" : "nested", "data-corps": corps.name });
  box.appendChild(el("h3", { text: corps.name + (corps.id ? "" : "") }));
  if (corps.workers.length > 0) {
    var table = el("table", {}, [el("tr", {}, ["Worker", "kind", "env", "inst", "mailbox", "calls", "rate/s", "", "in flight", "p50", "p90", "p99", "errors"].map(function (h, i) {
      return el("th", { text: h, className: i < 3 ? "l" : "" });
    }))]);
    corps.workers.forEach(function (w) {
      var key = path + "/" + w.name;
      var rate = rateOf(key, w, snapshot);
      var rates = (history[key] = (history[key] || []).concat([rate]).slice(-HISTORY));
      var calls = sum(w.methods.map(function (m) { return m.calls; }));
      var failures = sum(w.methods.map(failuresOf));
      var worst = w.methods.reduce(function (a, m) { return m.latencyMillis.p99 > a.latencyMillis.p99 ? m : a; },
        { latencyMillis: { p50: 0, p90: 0, p99: 0 } });
      table.appendChild(el("tr", { "data-worker": w.name, "data-calls": String(calls), "data-failures": String(failures) }, [
        el("td", { text: w.name }), el("td", { className: "l kind", text: w.kind }), el("td", { className: "l", text: w.env }),
        el("td", { text: String(w.instances) }), el("td", { text: String(w.mailbox) }),
        el("td", { className: "calls", text: String(calls) }), el("td", { text: rate.toFixed(1) }),
        el("td", {}, [sparkline(rates)]),
        el("td", { text: String(sum(w.methods.map(function (m) { return m.inFlight; }))) }),
        el("td", { text: ms(worst.latencyMillis.p50) }), el("td", { text: ms(worst.latencyMillis.p90) }),
        el("td", { text: ms(worst.latencyMillis.p99) }),
        el("td", { className: failures > 0 ? "err" : "", text: String(failures) })
      ]));
      w.methods.forEach(function (m) {
        var f = failuresOf(m);
        var tags = Object.keys(m.failures).map(function (k) { return k + " " + m.failures[k]; }).join(", ");
        table.appendChild(el("tr", { className: "method", "data-method": w.name + "." + m.method }, [
          el("td", { text: "." + m.method }), el("td"), el("td"), el("td"), el("td"),
          el("td", { text: String(m.calls) }), el("td"), el("td"), el("td", { text: String(m.inFlight) }),
          el("td", { text: ms(m.latencyMillis.p50) }), el("td", { text: ms(m.latencyMillis.p90) }),
          el("td", { text: ms(m.latencyMillis.p99) }),
          el("td", { className: f > 0 ? "err" : "", title: tags, text: f > 0 ? String(f) + " (" + tags + ")" : "0" })
        ]));
      });
    });
    box.appendChild(table);
  }
  corps.children.forEach(function (c) { box.appendChild(renderCorps(c, path + "/", snapshot)); });
  return box;
}

function renderEnvs(corps, into) {
  corps.envs.forEach(function (env) {
    var title = corps.name + " · " + env.name + " (" + env.kind + ", " + env.size +
      (env.min != null ? " in " + env.min + ".." + env.max : "") + ")";
    var block = el("div", { "data-env": env.name }, [el("h3", { text: title })]);
    if (env.slots.length === 0) {
      block.appendChild(el("p", { className: "empty", text: env.kind === "local" ? "the caller's runtime" : "no slots reported" }));
    } else {
      var table = el("table", {}, [el("tr", {}, ["#", "state", "pid", "thread", "utilisation", "heap", "in flight", "restarts", "last"].map(function (h, i) {
        return el("th", { text: h, className: i === 1 || i === 8 ? "l" : "" });
      }))]);
      env.slots.forEach(function (s) {
        var u = s.utilization == null ? 0 : s.utilization;
        table.appendChild(el("tr", { "data-slot": env.name + "#" + s.index, "data-state": s.state, "data-restarts": String(s.restarts) }, [
          el("td", { text: String(s.index) }),
          el("td", { className: "l state-" + s.state, text: s.state }),
          el("td", { text: s.pid == null ? "–" : String(s.pid) }),
          el("td", { text: s.threadId == null ? "–" : String(s.threadId) }),
          el("td", {}, [el("span", { className: "bar" + (u > 0.8 ? " hot" : "") }, [el("span", { style: "width:" + (u * 100).toFixed(0) + "%" })]),
            " " + (s.utilization == null ? "–" : (u * 100).toFixed(0) + "%")]),
          el("td", { text: mb(s.heapUsed) }),
          el("td", { text: String(s.inFlight) }),
          el("td", { className: s.restarts > 0 ? "err" : "", text: String(s.restarts) }),
          el("td", { className: "l kind", text: s.reason || (s.address ? s.address + (s.host ? " on " + s.host : "") : "") })
        ]));
      });
      block.appendChild(table);
    }
    into.appendChild(block);
  });
  corps.children.forEach(function (c) { renderEnvs(c, into); });
}

var tone = { EnvStarted: "ok", SpareReady: "ok", EnvCrashed: "bad", EnvRestarting: "warn", SupervisionExhausted: "bad",
  CallRedelivered: "info", CallQuarantined: "bad", InstanceRestarted: "warn" };

function describe(e) {
  switch (e._tag) {
    case "EnvStarted": return e.env + "#" + e.index + (e.attempt > 0 ? " restarted (attempt " + e.attempt + ")" : " started");
    case "SpareReady": return "spare of " + e.env + " ready";
    case "EnvCrashed": return e.env + "#" + e.index + " " + e.reason + ": " + e.detail;
    case "EnvRestarting": return e.env + "#" + e.index + " restarts in " + e.delayMillis + " ms";
    case "SupervisionExhausted": return (e.worker || e.env) + " gave up (" + e.outcome + "): " + e.detail;
    case "CallRedelivered": return e.worker + "." + e.method + " sent again (attempt " + e.attempt + ")";
    case "CallQuarantined": return e.worker + "." + e.method + " quarantined";
    case "InstanceRestarted": return e.worker + "[" + e.key + "] rebuilt";
    default: {
      // Kinds this page does not know yet (scaling, passivation…) still show, with their fields.
      var rest = Object.keys(e).filter(function (k) { return k !== "_tag" && k !== "corps" && k !== "at"; })
        .map(function (k) { return k + "=" + (typeof e[k] === "object" ? JSON.stringify(e[k]) : e[k]); });
      return rest.join(" ");
    }
  }
}

function addEvent(e) {
  var id = JSON.stringify(e);
  if (seen[id]) return false;
  seen[id] = true;
  events.push(e);
  if (events.length > TIMELINE) delete seen[JSON.stringify(events.shift())];
  return true;
}

function renderTimeline() {
  var list = document.getElementById("timeline");
  list.textContent = "";
  if (events.length === 0) list.appendChild(el("li", { className: "empty", text: "no events yet" }));
  events.slice().reverse().forEach(function (e) {
    var restart = e._tag === "EnvStarted" && e.attempt > 0;
    list.appendChild(el("li", { "data-event": e._tag, "data-restart": restart ? "true" : "false" }, [
      el("time", { text: new Date(e.at).toLocaleTimeString() }),
      el("span", { className: "tag " + (tone[e._tag] || "info"), text: e._tag }),
      describe(e)
    ]));
  });
  var strip = document.getElementById("strip");
  strip.textContent = "";
  var now = Date.now();
  events.forEach(function (e) {
    var x = 300 - ((now - e.at) / STRIP_MILLIS) * 300;
    if (x < 0) return;
    var mark = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    mark.setAttribute("x", x.toFixed(1)); mark.setAttribute("y", "3"); mark.setAttribute("width", "2"); mark.setAttribute("height", "20");
    mark.setAttribute("fill", { ok: "#4cc38a", bad: "#ef6b6b", warn: "#e5b54a", info: "#5aa9e6" }[tone[e._tag] || "info"]);
    strip.appendChild(mark);
  });
}

function render(snapshot) {
  document.getElementById("corps-name").textContent = snapshot.corps.name;
  document.getElementById("at").textContent = new Date(snapshot.at).toLocaleTimeString();
  var tree = document.getElementById("tree");
  tree.textContent = "";
  tree.appendChild(renderCorps(snapshot.corps, "", snapshot));
  var envs = document.getElementById("envs");
  envs.textContent = "";
  renderEnvs(snapshot.corps, envs);
  var added = false;
  snapshot.events.forEach(function (e) { added = addEvent(e) || added; });
  if (added || events.length === 0) renderTimeline();
  previous = { at: snapshot.at, workers: workersByPath(snapshot.corps, "", {}) };
}

function connect() {
  var status = document.getElementById("status");
  var source = new EventSource("api/stream");
  source.addEventListener("open", function () { status.className = "live"; status.textContent = "live"; });
  source.addEventListener("error", function () { status.className = "down"; status.textContent = "reconnecting…"; });
  source.addEventListener("snapshot", function (m) { render(JSON.parse(m.data)); });
  source.addEventListener("event", function (m) { if (addEvent(JSON.parse(m.data))) renderTimeline(); });
}
connect();
})();
</script>
</body>
</html>
`
