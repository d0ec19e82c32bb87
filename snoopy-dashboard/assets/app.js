// Snoopy dashboard: fetches /api/view for the filter in the URL, draws the service map and
// the tables, and fetches again whenever the server says the data changed (/api/events).
// Plain JavaScript, no library: the page is small enough, and nothing is fetched from
// elsewhere.
"use strict";

const FILTER_KEYS = ["namespace", "pod", "node", "since"];
// Rows a table shows at most (the busiest or most failing first); filters narrow the rest.
const MAX_ROWS = 500;
const state = { view: null, sort: { key: "success_rate", dir: 1 }, pair: null, fetching: false, again: false };

const $ = (sel) => document.querySelector(sel);
const svgNS = "http://www.w3.org/2000/svg";
function el(tag, attrs = {}, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(svgNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- formatting ---------------------------------------------------------------------------
const pct = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(r === 1 || r === 0 ? 0 : 1) + " %");
const rateClass = (r) => (r === null || r === undefined ? "none" : r >= 0.99 ? "good" : r >= 0.9 ? "warn" : "bad");
const ms = (ns) => (ns === null || ns === undefined ? "–" : (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + " ms");
const bytes = (b) => (b < 1024 ? b + " B" : b < 1 << 20 ? (b / 1024).toFixed(1) + " KiB" : (b / (1 << 20)).toFixed(1) + " MiB");
const time = (ns) => new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 19);
function failures(f) {
  const parts = Object.entries(f).filter(([, n]) => n > 0).map(([k, n]) => `${k.replace("_", " ")} ${n}`);
  return parts.length ? parts.join(", ") : "–";
}

// ---- the URL is the state -----------------------------------------------------------------
function filterFromUrl() {
  const q = new URLSearchParams(location.search);
  const f = {};
  for (const k of FILTER_KEYS) if (q.get(k)) f[k] = q.get(k);
  if (q.get("source") && q.get("destination")) state.pair = { source: q.get("source"), destination: q.get("destination") };
  if (q.get("sort")) state.sort = { key: q.get("sort"), dir: q.get("dir") === "desc" ? -1 : 1 };
  return f;
}
function query(extra = {}) {
  const q = new URLSearchParams();
  const f = filterFromUrl();
  for (const k of FILTER_KEYS) if (f[k]) q.set(k, f[k]);
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  return q;
}
function setUrl(changes) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) (v ? q.set(k, v) : q.delete(k));
  history.replaceState(null, "", "?" + q.toString());
}

// ---- data ---------------------------------------------------------------------------------
async function refresh() {
  if (state.fetching) { state.again = true; return; }
  state.fetching = true;
  try {
    const res = await fetch("/api/view?" + query().toString());
    state.view = await res.json();
    render();
    if (state.pair) await showPair(state.pair.source, state.pair.destination, false);
  } catch (e) {
    $("#live").textContent = "cannot reach the dashboard: " + e.message;
    $("#live").className = "off";
  } finally {
    state.fetching = false;
    if (state.again) { state.again = false; refresh(); }
  }
}

function render() {
  const started = performance.now();
  const v = state.view;
  document.body.dataset.version = v.version;
  renderMap(v.pairs);
  renderDestinations(v.destinations);
  renderPairs(v.pairs);
  renderProbes(v.probes);
  renderThroughput(v.throughput);
  renderRuns(v.runs);
  renderStats(v.stats, v.missing || []);
  fillList("#namespaces", v.namespaces);
  fillList("#nodes", v.nodes);
  // For the benchmark: when the first view was on screen (ms since navigation), and how long
  // the last render took.
  window.snoopyRenderMs = performance.now() - started;
  if (window.snoopyFirstView === undefined) window.snoopyFirstView = performance.now();
}

function fillList(sel, values) {
  const list = $(sel);
  list.replaceChildren(...values.map((v) => el("option", { value: v })));
}

// ---- the service map ----------------------------------------------------------------------
const escapeHtml = (t) => String(t).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// Built as one string and parsed once: thousands of edges render in a fraction of the time
// element-by-element creation takes. Clicks and keys are handled once, on the map.
function renderMap(pairs) {
  const svg = $("#map");
  $("#map-empty").hidden = pairs.length > 0;
  const width = svg.clientWidth || 900, height = svg.clientHeight || 460;
  // Hosts on a circle, grouped by namespace (sorted), so a namespace's pods sit together.
  const hosts = [...new Set(pairs.flatMap((p) => [p.source, p.destination]))].sort((a, b) => {
    const na = a.includes("/") ? a.split("/")[0] : "~", nb = b.includes("/") ? b.split("/")[0] : "~";
    return na === nb ? a.localeCompare(b) : na.localeCompare(nb);
  });
  const cx = width / 2, cy = height / 2, r = Math.max(60, Math.min(width, height) / 2 - 60);
  const pos = new Map(hosts.map((h, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, hosts.length) - Math.PI / 2;
    return [h, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a), a }];
  }));
  let maxBytes = 1;
  for (const p of pairs) maxBytes = Math.max(maxBytes, p.bytes);
  const trim = 16; // the host circle's radius and a little
  const parts = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs><g class="edges">'];
  for (const p of pairs) {
    const a = pos.get(p.source), b = pos.get(p.destination);
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const label = escapeHtml(`${p.source} to ${p.destination}: ${pct(p.success_rate)} of ${p.attempts} attempts succeeded, ${bytes(p.bytes)}`);
    const selected = state.pair && state.pair.source === p.source && state.pair.destination === p.destination ? " selected" : "";
    const w = 1.5 + 5 * Math.log1p(p.bytes) / Math.log1p(maxBytes);
    parts.push(`<g class="edge ${rateClass(p.success_rate)}${selected}" tabindex="0" role="button" data-source="${escapeHtml(p.source)}" data-destination="${escapeHtml(p.destination)}" data-success-rate="${p.success_rate === null ? "" : p.success_rate}" data-attempts="${p.attempts}" aria-label="${label}"><line x1="${(a.x + (dx / len) * trim).toFixed(1)}" y1="${(a.y + (dy / len) * trim).toFixed(1)}" x2="${(b.x - (dx / len) * trim).toFixed(1)}" y2="${(b.y - (dy / len) * trim).toFixed(1)}" stroke-width="${w.toFixed(1)}" marker-end="url(#arrow)"/><title>${label}</title></g>`);
  }
  parts.push('</g><g class="hosts">');
  // Beyond a few dozen hosts the names would overlap: they show on hover instead.
  const labelled = hosts.length <= 60;
  for (const h of hosts) {
    const { x, y, a } = pos.get(h);
    const right = Math.cos(a) >= 0;
    const name = escapeHtml(h);
    const text = labelled ? `<text x="${(x + (right ? 14 : -14)).toFixed(1)}" y="${(y + 4).toFixed(1)}" text-anchor="${right ? "start" : "end"}">${name}</text>` : "";
    parts.push(`<g class="host" data-host="${name}"><circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${labelled ? 10 : 4}"><title>${name}</title></circle>${text}</g>`);
  }
  parts.push("</g>");
  svg.innerHTML = parts.join("");
}

function edgeOf(event) {
  const g = event.target.closest && event.target.closest(".edge");
  return g ? { source: g.dataset.source, destination: g.dataset.destination } : null;
}

// ---- tables -------------------------------------------------------------------------------
function sortValue(d, key) {
  switch (key) {
    case "p50": case "p90": case "p99": return d.rtt_ns[key] ?? Infinity;
    case "success_rate": return d.success_rate ?? 2;
    default: return d[key];
  }
}

function renderDestinations(dests) {
  const { key, dir } = state.sort;
  const rows = [...dests].sort((a, b) => {
    const va = sortValue(a, key), vb = sortValue(b, key);
    return (va < vb ? -1 : va > vb ? 1 : a.label.localeCompare(b.label)) * dir;
  });
  for (const b of document.querySelectorAll("#destinations th button")) {
    b.setAttribute("aria-sort", b.dataset.sort === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
  note("#destinations", rows.length);
  $("#destinations tbody").replaceChildren(...rows.slice(0, MAX_ROWS).map((d) => {
    const tr = el("tr", { "data-destination": d.label, "data-protocol": d.protocol, "data-attempts": d.attempts, "data-successes": d.successes });
    tr.append(
      el("td", {}, d.label),
      el("td", {}, d.protocol),
      el("td", { class: "num" }, d.attempts),
      el("td", { class: "num rate " + rateClass(d.success_rate), "data-rate": d.success_rate ?? "" }, pct(d.success_rate)),
      el("td", { class: d.attempts > d.successes ? "fail" : "", "data-failures": JSON.stringify(d.failures) }, failures(d.failures)),
      el("td", { class: "num" }, ms(d.rtt_ns.p50)),
      el("td", { class: "num" }, ms(d.rtt_ns.p90)),
      el("td", { class: "num" }, ms(d.rtt_ns.p99)),
      el("td", { class: "num" }, d.retransmissions),
      el("td", { class: "num" }, bytes(d.bytes)),
      el("td", { class: "probes" }, d.probes.map((p) => `${p.check} ${p.successes}/${p.attempts} ok${p.latency_ns.p50 ? ", p50 " + ms(p.latency_ns.p50) : ""}`).join("; ") || "–"),
    );
    return tr;
  }));
}

function note(table, total) {
  const t = $(table);
  let n = t.nextElementSibling;
  if (!n || !n.classList.contains("more")) {
    n = el("p", { class: "more hint" });
    t.after(n);
  }
  n.hidden = total <= MAX_ROWS;
  n.textContent = `Showing ${MAX_ROWS} of ${total}: narrow the view with the filters above.`;
}

function renderPairs(pairs) {
  note("#pairs", pairs.length);
  $("#pairs tbody").replaceChildren(...pairs.slice(0, MAX_ROWS).map((p) => {
    const tr = el("tr", { "data-source": p.source, "data-destination": p.destination });
    if (state.pair && state.pair.source === p.source && state.pair.destination === p.destination) tr.classList.add("selected");
    const button = el("button", { type: "button", class: "link" }, p.source);
    button.addEventListener("click", () => showPair(p.source, p.destination, true));
    const first = el("td");
    first.append(button);
    tr.append(
      first,
      el("td", {}, p.destination),
      el("td", { class: "num" }, p.attempts),
      el("td", { class: "num rate " + rateClass(p.success_rate) }, pct(p.success_rate)),
      el("td", { class: p.attempts > p.successes ? "fail" : "" }, failures(p.failures)),
      el("td", { class: "num" }, ms(p.rtt_ns.p50)),
      el("td", { class: "num" }, bytes(p.bytes)),
      el("td", {}, p.nodes.join(", ") || "–"),
    );
    return tr;
  }));
}

function renderProbes(probes) {
  $("#probes tbody").replaceChildren(...probes.map((p) => {
    const tr = el("tr", { "data-check": p.check, "data-target": p.target });
    tr.append(
      el("td", {}, p.source),
      el("td", {}, p.check),
      el("td", {}, p.target),
      el("td", { class: "num" }, p.attempts),
      el("td", { class: "num rate " + rateClass(p.success_rate) }, pct(p.success_rate)),
      el("td", { class: Object.keys(p.failures).length ? "fail" : "" }, failures(p.failures)),
      el("td", { class: "num" }, ms(p.latency_ns.p50)),
      el("td", { class: "num" }, ms(p.latency_ns.p90)),
      el("td", { class: "num" }, ms(p.latency_ns.p99)),
    );
    return tr;
  }));
}

// The throughput matrix: clients as rows, servers as columns, each cell shaded by its
// received Gbit/s against the fastest pair shown.
function renderThroughput(cells) {
  const table = $("#throughput");
  if (!cells.length) {
    const tr = el("tr");
    tr.append(el("td", { class: "empty" }, "No throughput tests yet."));
    table.tHead.replaceChildren();
    table.tBodies[0].replaceChildren(tr);
    return;
  }
  const clients = [...new Set(cells.map((c) => c.client))].sort();
  const servers = [...new Set(cells.map((c) => c.server))].sort();
  const byPair = new Map(cells.map((c) => [c.client + "\n" + c.server, c]));
  const rate = (c) => c.forward_gbps ?? c.reverse_gbps ?? 0;
  const fastest = Math.max(...cells.filter((c) => c.ok).map(rate), 1e-9);
  const head = el("tr");
  head.append(el("th", { scope: "col" }, "client \\ server"), ...servers.map((s) => el("th", { scope: "col" }, s)));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...clients.map((client) => {
    const tr = el("tr");
    tr.append(el("th", { scope: "row" }, client));
    for (const server of servers) {
      const c = byPair.get(client + "\n" + server);
      if (!c) {
        tr.append(el("td", { class: "cell none" }, "–"));
        continue;
      }
      const td = el("td", {
        class: "cell " + (c.ok ? "ok" : "bad"),
        "data-client": client, "data-server": server,
        "data-gbps": c.ok ? rate(c).toFixed(3) : undefined, "data-reason": c.reason ?? undefined,
        title: c.ok
          ? `${client} → ${server}: ${rate(c).toFixed(2)} Gbit/s` + (c.retransmits !== null ? `, ${c.retransmits} retransmissions` : "")
            + (c.lost_percent !== null ? `, ${c.lost_percent.toFixed(1)} % lost` : "") + `; ${c.tests} tests, ${c.failed} failed; ${c.node ?? ""}`
          : `${client} → ${server}: ${c.error ?? c.reason}`,
      });
      if (c.ok) {
        td.style.setProperty("--heat", (rate(c) / fastest).toFixed(3));
        td.append(el("span", { class: "gbps" }, rate(c).toFixed(2) + " G"));
        if (c.round_trip_ms !== null) td.append(el("span", { class: "rr" }, "rr " + c.round_trip_ms.toFixed(3) + " ms"));
      } else {
        td.append(el("span", { class: "gbps" }, "✗ " + (c.reason ?? "failed").replaceAll("_", " ")));
      }
      tr.append(td);
    }
    return tr;
  }));
}

function renderRuns(runs) {
  $("#runs tbody").replaceChildren(...runs.map((r) => {
    const tr = el("tr", { "data-run": r.run, "data-packets": r.packets });
    const link = el("a", { href: "/api/pcapng?run=" + encodeURIComponent(r.run), download: "" }, "download pcapng");
    const cell = el("td");
    cell.append(link);
    tr.append(
      el("td", {}, r.run),
      el("td", {}, Object.entries(r.keys).map(([k, n]) => `${k} (${n})`).join(", ")),
      el("td", {}, r.nodes.join(", ") || "–"),
      el("td", { class: "num" }, r.packets),
      el("td", {}, time(r.first_ns)),
      el("td", {}, time(r.last_ns)),
      cell,
    );
    return tr;
  }));
}

function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }

function renderStats(s, missing) {
  const f = $("#stats");
  f.dataset.missing = missing.length;
  f.dataset.evictedWindows = s.evicted_windows;
  f.dataset.flows = s.flows;
  f.dataset.probes = s.probes;
  f.dataset.malformed = s.malformed;
  f.dataset.unknownType = s.unknown_type;
  f.dataset.inputErrors = s.input_errors;
  const parts = [
    `${s.flows} flow records`, `${s.probes} probe reports`, `${s.throughput} throughput tests`, `${s.packet_messages} packet messages`, `${s.malformed} malformed`,
    `${s.unknown_type} of unknown type`, `${s.input_errors} input errors`,
    `${s.evicted_conversations + s.evicted_probes + s.evicted_runs + s.evicted_throughput} evicted`,
    `memory ${mib(s.memory_bytes)} of ${mib(s.max_memory_bytes)}`,
  ];
  if (s.evicted_windows > 0) parts.push(`${s.evicted_windows} windows dropped for memory (complete since ${time(s.shortened_before_ns)})`);
  f.replaceChildren(el("span", {}, parts.join(" · ")));
  for (const m of missing) f.append(el("span", { class: "problem missing" }, " · missing: " + m));
  if (s.last_problem) f.append(el("span", { class: "problem" }, " · last problem: " + s.last_problem));
}

// ---- one pair -----------------------------------------------------------------------------
async function showPair(source, destination, focus) {
  state.pair = { source, destination };
  setUrl({ source, destination });
  const res = await fetch("/api/pair?" + query({ source, destination }).toString());
  const d = await res.json();
  const section = $("#pair");
  section.hidden = false;
  $("#pair-title").textContent = `${source} → ${destination}`;
  chart($("#rate-chart"), d.series, [{ cls: "series-rate", value: (p) => p.success_rate }], 1, (v) => Math.round(v * 100) + " %");
  const top = Math.max(1e-3, ...d.series.map((p) => (p.rtt_ns.p90 ?? 0) / 1e6));
  chart($("#rtt-chart"), d.series, [
    { cls: "series-p50", value: (p) => (p.rtt_ns.p50 === null ? null : p.rtt_ns.p50 / 1e6) },
    { cls: "series-p90", value: (p) => (p.rtt_ns.p90 === null ? null : p.rtt_ns.p90 / 1e6) },
  ], top, (v) => v.toFixed(v < 10 ? 2 : 0));
  $("#failed tbody").replaceChildren(...d.failed.map((f) => {
    const tr = el("tr", { "data-outcome": f.outcome });
    tr.append(el("td", {}, time(f.time_ns)), el("td", {}, f.initiator), el("td", {}, f.responder),
      el("td", {}, f.protocol), el("td", { class: "fail" }, f.outcome), el("td", {}, f.node ?? "–"));
    return tr;
  }));
  for (const g of document.querySelectorAll("#map .edge")) {
    g.classList.toggle("selected", g.dataset.source === source && g.dataset.destination === destination);
  }
  if (focus) section.scrollIntoView({ block: "nearest" });
}

function chart(svg, series, lines, top, label) {
  const w = svg.clientWidth || 400, h = svg.clientHeight || 160, pad = 28;
  const n = series.length;
  const x = (i) => pad + (n <= 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (n - 1));
  const y = (v) => h - pad + 8 - (Math.min(v, top) / top) * (h - 2 * pad);
  const parts = [el("svg:line", { class: "axis", x1: pad, y1: y(0), x2: w - pad, y2: y(0) }),
    el("svg:text", { x: 2, y: y(top) + 4 }, label(top)), el("svg:text", { x: 2, y: y(0) + 4 }, label(0))];
  if (n) {
    parts.push(el("svg:text", { x: pad, y: h - 4 }, time(series[0].start_ns).slice(11)));
    parts.push(el("svg:text", { x: w - pad, y: h - 4, "text-anchor": "end" }, time(series[n - 1].start_ns).slice(11)));
  }
  for (const line of lines) {
    const pts = series.map((p, i) => [i, line.value(p)]).filter(([, v]) => v !== null && v !== undefined);
    const attrs = { class: line.cls, points: pts.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ") };
    parts.push(el("svg:polyline", attrs));
    for (const [i, v] of pts) parts.push(el("svg:circle", { cx: x(i), cy: y(v), r: 2.5, class: line.cls }));
  }
  svg.replaceChildren(...parts);
}

// ---- controls -----------------------------------------------------------------------------
function setScheme(dark) {
  document.documentElement.dataset.scheme = dark ? "dark" : "light";
  const b = $("#scheme");
  b.setAttribute("aria-pressed", String(dark));
  b.textContent = dark ? "Light" : "Dark";
}

function start() {
  const stored = localStorage.getItem("snoopy-scheme");
  setScheme(stored ? stored === "dark" : matchMedia("(prefers-color-scheme: dark)").matches);
  $("#scheme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.scheme !== "dark";
    localStorage.setItem("snoopy-scheme", dark ? "dark" : "light");
    setScheme(dark);
  });
  const form = $("#filters");
  const f = filterFromUrl();
  for (const k of FILTER_KEYS) form.elements[k].value = f[k] ?? "";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const changes = {};
    for (const k of FILTER_KEYS) changes[k] = form.elements[k].value.trim();
    setUrl(changes);
    refresh();
  });
  for (const b of document.querySelectorAll("#destinations th button")) {
    b.addEventListener("click", () => {
      const key = b.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      setUrl({ sort: key, dir: state.sort.dir > 0 ? "" : "desc" });
      if (state.view) renderDestinations(state.view.destinations);
    });
  }
  $("#close-pair").addEventListener("click", () => {
    state.pair = null;
    setUrl({ source: "", destination: "" });
    $("#pair").hidden = true;
    for (const g of document.querySelectorAll("#map .edge.selected")) g.classList.remove("selected");
  });
  const map = $("#map");
  map.addEventListener("click", (e) => { const p = edgeOf(e); if (p) showPair(p.source, p.destination, true); });
  map.addEventListener("keydown", (e) => {
    const p = edgeOf(e);
    if (p && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); showPair(p.source, p.destination, true); }
  });
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { $("#live").textContent = "live"; $("#live").className = "on"; });
  events.addEventListener("error", () => { $("#live").textContent = "reconnecting…"; $("#live").className = "off"; });
  events.addEventListener("update", refresh);
  refresh();
}

start();
