#include "mqttlive/status_page.h"

#include <cmath>
#include <cstdio>

#include "mqttlive/json_events.h"
#include "mqttlive/metrics.h"

namespace mqttlive {

namespace {

// No build chain: plain HTML, one stylesheet block, one script file. Every
// value from the server reaches the page through textContent or
// setAttribute, never as markup.
constexpr char kHtml[] = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mqttlive status</title>
<style>
  :root { --fg: #1d2330; --muted: #5d6677; --line: #d8dde6; --bg: #f6f7f9; --card: #fff;
          --bad: #b3261e; --warn: #9a6700; --ok: #1a7f37; --accent: #0b5cad; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px;
           background: #1d2330; color: #fff; }
  header h1 { margin: 0; font-size: 20px; }
  header .sub { color: #aab3c5; }
  #updated { margin-left: auto; color: #aab3c5; font-variant-numeric: tabular-nums; }
  #updated.error { color: #ffb4ab; }
  main { padding: 16px 24px 32px; }
  .banner { margin: 0 0 16px; padding: 10px 14px; border-radius: 6px; font-weight: 600;
            background: #fde7e4; color: var(--bad); border: 1px solid #f3b8b1; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 16px;
           margin-bottom: 20px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
  .card h2 { margin: 0 0 8px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em;
             color: var(--muted); }
  .kv { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
  .kv dt { color: var(--muted); }
  .kv dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .card table { width: 100%; border-collapse: collapse; }
  .card td, .card th { padding: 2px 4px; text-align: right; font-variant-numeric: tabular-nums; }
  .card td:first-child, .card th:first-child { text-align: left; }
  #latency td:not(:first-child) { white-space: nowrap; }
  .card th { color: var(--muted); font-weight: 500; }
  .card ol { margin: 0; padding-left: 20px; }
  .card li { overflow-wrap: anywhere; }
  h2.section { font-size: 16px; margin: 8px 0; }
  #suspects { width: 100%; border-collapse: collapse; background: var(--card);
              border: 1px solid var(--line); }
  #suspects th { position: sticky; top: 0; background: #eef1f5; text-align: left; padding: 6px 8px;
                 border-bottom: 1px solid var(--line); cursor: pointer; user-select: none; white-space: nowrap; }
  #suspects th:hover { color: var(--accent); }
  #suspects th[aria-sort="ascending"]::after { content: " \25B2"; font-size: 10px; }
  #suspects th[aria-sort="descending"]::after { content: " \25BC"; font-size: 10px; }
  #suspects td { padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  #suspects td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  #suspects td.c-client_id { max-width: 28em; overflow-wrap: anywhere; font-family: ui-monospace, monospace; }
  #suspects td.c-client { font-family: ui-monospace, monospace; white-space: nowrap; }
  .state { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px; white-space: nowrap; }
  tr[data-state="expired"] .state { background: #fde7e4; color: var(--bad); }
  tr[data-state="no_keepalive_idle"] .state { background: #fff4d6; color: var(--warn); }
  tr[data-state="flapping"] .state { background: #e8eefc; color: var(--accent); }
  .none { color: var(--muted); font-style: italic; }
  footer { margin-top: 20px; color: var(--muted); }
  footer a { color: var(--accent); }
</style>
</head>
<body>
<header><h1>mqttlive</h1><span class="sub">live MQTT connection status</span><span id="updated">loading&hellip;</span></header>
<main>
<div id="storm" class="banner" hidden></div>
<section class="cards">
  <div class="card"><h2>Open connections</h2><table id="states"><tbody></tbody></table></div>
  <div class="card"><h2>Reconnects</h2><dl class="kv" id="reconnects"></dl></div>
  <div class="card"><h2 id="top-title">Top reconnecting client ids</h2><ol id="top-flapping"></ol><p id="top-none" class="none">none</p></div>
  <div class="card"><h2>Round trips (since start, bucket estimates)</h2>
    <table id="latency"><thead><tr><th>request</th><th>n</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th></tr></thead><tbody></tbody></table></div>
</section>
<h2 class="section">Suspect connections <span id="suspect-count"></span></h2>
<table id="suspects">
  <thead><tr>
    <th data-key="client_id" tabindex="0">Client ID</th>
    <th data-key="client" tabindex="0">Client</th>
    <th data-key="state" tabindex="0">State</th>
    <th data-key="keepalive" tabindex="0">Keepalive</th>
    <th data-key="silent_for" tabindex="0">Silent for</th>
    <th data-key="suspect_for" tabindex="0">Suspect for</th>
    <th data-key="detail" tabindex="0">Detail</th>
  </tr></thead>
  <tbody></tbody>
</table>
<p id="no-suspects" class="none" hidden>No suspect connections right now.</p>
<footer>Refreshes every 2 s. Click a column header to sort (or <code>?sort=client_id</code>,
<code>?sort=-silent_for</code>). Data: <a href="connections">/connections</a>,
<a href="api/summary">/api/summary</a>, <a href="./">index and metrics</a>.</footer>
</main>
<script src="status.js"></script>
</body>
</html>
)html";

constexpr char kScript[] = R"js('use strict';
(function () {
  var COLUMNS = ['client_id', 'client', 'state', 'keepalive', 'silent_for', 'suspect_for', 'detail'];
  var NUMERIC = { keepalive: true, silent_for: true, suspect_for: true };
  var DEFAULT_SORT = { key: 'suspect_for', desc: true };
  var STATE_LABEL = { expired: 'half-open', no_keepalive_idle: 'idle, keepalive 0', flapping: 'flapping' };
  var STATE_ORDER = ['connecting', 'active', 'expired', 'no_keepalive_idle', 'closing'];
  var LATENCY_LABEL = {
    ping_rtt: 'PINGREQ \u2192 PINGRESP',
    publish_ack_qos1_client: 'PUBLISH q1 client \u2192 PUBACK',
    publish_ack_qos1_broker: 'PUBLISH q1 broker \u2192 PUBACK',
    publish_ack_qos2_client: 'PUBLISH q2 client \u2192 PUBREC',
    publish_ack_qos2_broker: 'PUBLISH q2 broker \u2192 PUBREC',
    subscribe_ack: 'SUBSCRIBE \u2192 SUBACK'
  };
  var REFRESH_MS = 2000;

  var sort = parseSort(window.location.search);
  var rows = [];

  // ?sort=KEY (its natural order: numbers largest first, text A-Z),
  // ?sort=-KEY (descending), optional &order=asc|desc.
  function parseSort(search) {
    var p = new URLSearchParams(search);
    var key = p.get('sort');
    if (key === null || key === '') return { key: DEFAULT_SORT.key, desc: DEFAULT_SORT.desc };
    var desc;
    if (key.charAt(0) === '-') { desc = true; key = key.slice(1); }
    if (COLUMNS.indexOf(key) < 0) return { key: DEFAULT_SORT.key, desc: DEFAULT_SORT.desc };
    var order = p.get('order');
    if (order === 'desc') desc = true;
    else if (order === 'asc') desc = false;
    if (desc === undefined) desc = !!NUMERIC[key];
    return { key: key, desc: desc };
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmtDuration(s) {
    if (s === null || s === undefined || !isFinite(s)) return '\u2014';
    s = Math.max(0, s);
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' m ' + String(Math.floor(s % 60)).padStart(2, '0') + ' s';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + String(m % 60).padStart(2, '0') + ' m';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return '\u2014';
    if (s < 1) return (s * 1000).toPrecision(3) + ' ms';
    return s.toPrecision(3) + ' s';
  }

  function fmtMs(s) {
    var ms = num(s) * 1000;
    return ms < 1000 ? ms.toPrecision(3) : String(Math.round(ms));
  }

  function buildRows(conns, summary) {
    var out = [];
    var list = conns && Array.isArray(conns.connections) ? conns.connections : [];
    list.forEach(function (c) {
      var detail = c.state === 'expired' ? 'past its keepalive deadline, still open'
                                         : 'keepalive 0 and silent';
      if (c.keepalive_source && c.keepalive_source !== 'connect') detail += '; keepalive ' + c.keepalive_source;
      if (c.uncertain) detail += '; uncertain: data was missing';
      out.push({
        client_id: c.client_id, client: c.client, state: c.state,
        keepalive: typeof c.keepalive === 'number' ? c.keepalive : null,
        silent_for: typeof c.silent_for === 'number' ? c.silent_for : null,
        suspect_for: typeof conns.now === 'number' && typeof c.since === 'number'
            ? Math.max(0, conns.now - c.since) : null,
        detail: detail
      });
    });
    var flap = summary && Array.isArray(summary.top_flapping) ? summary.top_flapping : [];
    flap.forEach(function (f) {
      if (!f.flapping) return;
      out.push({
        client_id: f.client_id, client: null, state: 'flapping', keepalive: null,
        silent_for: null,
        suspect_for: typeof summary.now === 'number' ? Math.max(0, summary.now - f.first) : null,
        detail: f.connects + ' connects in ' + fmtDuration(summary.window_seconds)
      });
    });
    return out;
  }

  function compare(a, b) {
    var k = sort.key, x = a[k], y = b[k];
    var xn = x === null || x === undefined, yn = y === null || y === undefined;
    if (xn || yn) {
      if (xn && yn) return tiebreak(a, b);
      return xn ? 1 : -1;  // unknown values last in either direction
    }
    var r;
    if (NUMERIC[k]) r = x - y;
    else { x = String(x); y = String(y); r = x < y ? -1 : x > y ? 1 : 0; }
    if (r === 0) return tiebreak(a, b);
    return sort.desc ? -r : r;
  }
  function tiebreak(a, b) {
    var x = String(a.client_id) + '\u0000' + String(a.client), y = String(b.client_id) + '\u0000' + String(b.client);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  function renderTable() {
    var tbody = document.querySelector('#suspects tbody');
    var sorted = rows.slice().sort(compare);
    var frag = document.createDocumentFragment();
    sorted.forEach(function (r) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-state', r.state);
      COLUMNS.forEach(function (k) {
        var v = r[k], td;
        if (k === 'state') {
          td = el('td', null, 'c-state');
          td.appendChild(el('span', STATE_LABEL[v] || v, 'state'));
        } else if (k === 'silent_for' || k === 'suspect_for') {
          td = el('td', fmtDuration(v), 'num c-' + k);
        } else if (k === 'keepalive') {
          td = el('td', v === null ? '\u2014' : v === 0 ? '0 (off)' : v + ' s', 'num c-' + k);
        } else if (k === 'client_id') {
          td = el('td', v === null || v === undefined ? '(unknown)' : v, 'c-' + k);
          if (v === null || v === undefined) td.classList.add('none');
        } else {
          td = el('td', v === null || v === undefined ? '\u2014' : v, 'c-' + k);
        }
        if (v !== null && v !== undefined) td.setAttribute('data-value', String(v));
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
    document.getElementById('no-suspects').hidden = rows.length > 0;
    document.getElementById('suspect-count').textContent = '(' + rows.length + ')';
    document.querySelectorAll('#suspects th').forEach(function (th) {
      var k = th.getAttribute('data-key');
      if (k === sort.key) th.setAttribute('aria-sort', sort.desc ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
    });
    document.body.setAttribute('data-sort', (sort.desc ? '-' : '') + sort.key);
  }

  function num(x) { return typeof x === 'number' && isFinite(x) ? x : 0; }

  function kv(dl, name, value) {
    dl.appendChild(el('dt', name));
    dl.appendChild(el('dd', value));
  }

  function renderSummary(s) {
    var storm = document.getElementById('storm');
    storm.hidden = !s.storm;
    storm.textContent = s.storm ? 'Reconnect storm: ' + num(s.connect_rate).toFixed(1) +
        ' connects/s against a baseline of ' + num(s.baseline_rate).toFixed(2) + '/s' : '';

    var states = document.querySelector('#states tbody');
    var frag = document.createDocumentFragment();
    var c = s.connections || {};
    STATE_ORDER.forEach(function (k) {
      var tr = document.createElement('tr');
      tr.appendChild(el('td', STATE_LABEL[k] || k));
      tr.appendChild(el('td', typeof c[k] === 'number' ? c[k] : 0));
      frag.appendChild(tr);
    });
    var total = document.createElement('tr');
    total.appendChild(el('th', 'open'));
    total.appendChild(el('th', typeof s.open === 'number' ? s.open : 0));
    frag.appendChild(total);
    states.replaceChildren(frag);

    var dl = document.getElementById('reconnects');
    dl.replaceChildren();
    kv(dl, 'connect rate (' + fmtDuration(typeof s.storm_window_seconds === 'number' ? s.storm_window_seconds : 10) + ')',
       num(s.connect_rate).toFixed(2) + ' /s');
    kv(dl, 'baseline (' + fmtDuration(typeof s.baseline_seconds === 'number' ? s.baseline_seconds : 600) + ')',
       num(s.baseline_rate).toFixed(2) + ' /s');
    kv(dl, 'storm', s.storm ? 'YES' : 'no');
    kv(dl, 'flapping ids (\u2265' + num(s.flapping_threshold) + ' in ' + fmtDuration(s.window_seconds) + ')',
       num(s.flapping_clients));
    kv(dl, 'idle-timeout fingerprint', typeof s.idle_timeout_fingerprint !== 'number' ? 'none'
       : fmtSeconds(s.idle_timeout_fingerprint) + ' (' + s.fingerprint_closes + ' closes)');
    var inf = s.inflight || {};
    kv(dl, 'QoS 1/2 in flight (client / broker)', num(inf.client) + ' / ' + num(inf.broker));

    var ol = document.getElementById('top-flapping');
    var items = document.createDocumentFragment();
    document.getElementById('top-title').textContent =
        'Top reconnecting client ids' + (s.client_ids_hashed ? ' (hashed)' : '');
    (s.top_flapping || []).slice(0, 100).forEach(function (f) {
      var li = el('li', f.client_id);
      li.appendChild(el('span', ' \u2014 ' + f.connects + ' connects', 'none'));
      items.appendChild(li);
    });
    ol.replaceChildren(items);
    document.getElementById('top-none').hidden = (s.top_flapping || []).length > 0;

    var lt = document.querySelector('#latency tbody');
    var lf = document.createDocumentFragment();
    var lat = s.latency || {};
    Object.keys(lat).forEach(function (k) {
      var q = lat[k], tr = document.createElement('tr');
      tr.appendChild(el('td', LATENCY_LABEL[k] || k));
      tr.appendChild(el('td', q.count));
      ['p50', 'p90', 'p99'].forEach(function (p) { tr.appendChild(el('td', q.count ? fmtMs(q[p]) : '\u2014')); });
      lf.appendChild(tr);
    });
    lt.replaceChildren(lf);
  }

  function fetchJson(path) {
    return fetch(path, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }

  function setStatus(text, error) {
    var u = document.getElementById('updated');
    u.textContent = text;
    u.classList.toggle('error', !!error);
  }

  function refresh() {
    Promise.all([fetchJson('connections'), fetchJson('api/summary')]).then(function (res) {
      rows = buildRows(res[0], res[1]);
      renderSummary(res[1]);
      renderTable();
      var truncated = res[0] && res[0].truncated ? ' (list truncated)' : '';
      setStatus('updated ' + new Date().toLocaleTimeString() + truncated, false);
      document.body.setAttribute('data-loaded', '1');
    }).catch(function (e) {
      setStatus('cannot refresh: ' + e.message, true);
    }).then(function () {
      window.setTimeout(refresh, REFRESH_MS);
    });
  }

  function sortBy(key) {
    if (sort.key === key) sort = { key: key, desc: !sort.desc };
    else sort = { key: key, desc: !!NUMERIC[key] };
    var p = new URLSearchParams(window.location.search);
    p.set('sort', (sort.desc ? '-' : '') + sort.key);
    p.delete('order');
    window.history.replaceState(null, '', '?' + p.toString());
    renderTable();
  }

  document.querySelectorAll('#suspects th').forEach(function (th) {
    var key = th.getAttribute('data-key');
    th.addEventListener('click', function () { sortBy(key); });
    th.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); sortBy(key); }
    });
  });
  renderTable();
  refresh();
})();
)js";

constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void appendSeconds(std::string& out, double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", std::isfinite(s) ? s : 0.0);
  out += buf;
}

}  // namespace

std::string_view statusPageHtml() { return {kHtml, sizeof kHtml - 1}; }
std::string_view statusPageScript() { return {kScript, sizeof kScript - 1}; }
std::string_view statusPageCsp() { return {kCsp, sizeof kCsp - 1}; }

std::string formatSummary(const SessionTracker& tracker, const FlapDetector& flap, const Metrics* metrics,
                          Micros now, size_t top_n, bool hash_client_ids) {
  std::string out;
  out.reserve(1024);
  out += "{\"now\":";
  appendJsonTime(out, now);
  out += ",\"open\":";
  out += std::to_string(tracker.openCount());
  out += ",\"connections\":{";
  const uint64_t* counts = tracker.stateCounts();
  for (int i = 0; i < static_cast<int>(ConnState::kCount); ++i) {
    if (i > 0) out += ',';
    appendJsonString(out, toString(static_cast<ConnState>(i)));
    out += ':';
    out += std::to_string(counts[i]);
  }
  out += "},\"inflight\":{\"client\":";
  out += std::to_string(tracker.inflight(Side::kClient));
  out += ",\"broker\":";
  out += std::to_string(tracker.inflight(Side::kBroker));
  const FlapStatus st = flap.status();
  out += "},\"storm\":";
  out += st.storm ? "true" : "false";
  out += ",\"connect_rate\":";
  appendSeconds(out, st.connect_rate);
  out += ",\"baseline_rate\":";
  appendSeconds(out, st.baseline_rate);
  out += ",\"flapping_clients\":";
  out += std::to_string(st.flapping_clients);
  out += ",\"flapping_threshold\":";
  out += std::to_string(flap.config().flapping_connects);
  out += ",\"window_seconds\":";
  appendSeconds(out, microsToSeconds(flap.config().window));
  out += ",\"storm_window_seconds\":";
  out += std::to_string(flap.config().storm_window_seconds);
  out += ",\"baseline_seconds\":";
  appendSeconds(out, flap.config().baseline_seconds);
  out += ",\"idle_timeout_fingerprint\":";
  if (st.fingerprint_seconds > 0)
    appendSeconds(out, st.fingerprint_seconds);
  else
    out += "null";
  out += ",\"fingerprint_closes\":";
  out += std::to_string(st.fingerprint_closes);
  out += ",\"client_ids_hashed\":";
  out += hash_client_ids ? "true" : "false";
  out += ",\"top_flapping\":[";
  bool first = true;
  for (const FlappingClient& f : flap.topFlapping(top_n)) {
    if (!first) out += ',';
    first = false;
    out += "{\"client_id\":";
    appendJsonString(out, hash_client_ids ? Metrics::hashClientId(f.client_id) : f.client_id);
    out += ",\"connects\":";
    out += std::to_string(f.connects);
    out += ",\"first\":";
    appendJsonTime(out, f.first);
    out += ",\"last\":";
    appendJsonTime(out, f.last);
    out += ",\"flapping\":";
    out += f.connects >= flap.config().flapping_connects ? "true" : "false";
    out += '}';
  }
  out += ']';
  if (metrics != nullptr) {
    out += ",\"latency\":{";
    first = true;
    for (const auto& q : metrics->latencyQuantiles()) {
      if (!first) out += ',';
      first = false;
      appendJsonString(out, q.name);
      out += ":{\"count\":";
      out += std::to_string(q.count);
      out += ",\"p50\":";
      appendSeconds(out, q.p50);
      out += ",\"p90\":";
      appendSeconds(out, q.p90);
      out += ",\"p99\":";
      appendSeconds(out, q.p99);
      out += '}';
    }
    out += '}';
  }
  out += '}';
  return out;
}

}  // namespace mqttlive
