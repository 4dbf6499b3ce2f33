// Homeline wallboard: the live queues from /wallboard/events (server-sent events,
// JSON "live" events sent when the board changes), waits counted on in the page
// between events, and uPlot charts of the day and of this week's staffing.
// Nothing is written to browser storage.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  if (!$("wb-queues")) return;  // not the wallboard (or not allowed)

  let skew = 0;  // server clock - page clock, seconds
  let last = null;
  const nowS = () => Date.now() / 1000 + skew;

  function mmss(s) {
    if (s === null || s === undefined) return "-";
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0") + ":" + String(r).padStart(2, "0");
    return h ? `${h}:${mm}` : mm;
  }
  const pct = (x) => (x === null || x === undefined) ? "-" : `${(x * 100).toFixed(0)}%`;
  const secs = (x) => (x === null || x === undefined) ? "-" : `${x.toFixed(1)} s`;
  function text(el, value) { if (el && el.textContent !== value) el.textContent = value; }

  function slClass(el, sl, target) {
    el.classList.toggle("wb-good", sl !== null && sl >= target);
    el.classList.toggle("wb-bad", sl !== null && sl < target);
  }

  let dayAsked = 0;
  function render(v) {
    // the day's charts follow the calls: asked again when today's count moves
    if (last && last.total.offered !== v.total.offered && Date.now() - dayAsked > 5000) {
      dayAsked = Date.now();
      day();
    }
    last = v;
    skew = v.now - Date.now() / 1000;
    text($("tot-waiting"), String(v.total.waiting));
    $("tot-longest").dataset.arrived = v.total.oldest_arrived === null ? "" : v.total.oldest_arrived;
    text($("tot-sl"), pct(v.total.service_level));
    text($("tot-offered"), String(v.total.offered));
    for (const [qid, q] of Object.entries(v.queues)) {
      const row = $(`q-${qid}`);
      if (!row) continue;
      text(row.querySelector(".q-waiting"), String(q.waiting));
      row.querySelector(".q-longest").dataset.arrived = q.oldest_arrived === null ? "" : q.oldest_arrived;
      const sl = row.querySelector(".q-sl");
      text(sl, pct(q.service_level));
      slClass(sl, q.service_level, q.sl_target);
      text(row.querySelector(".q-answered"), String(q.answered));
      text(row.querySelector(".q-abandoned"), String(q.abandoned));
      text(row.querySelector(".q-asa"), secs(q.asa_s));
      const ab = Object.entries(q.agents_by_state || {}).filter(([st]) => st !== "offline");
      text(row.querySelector(".q-agents"),
           ab.length ? ab.map(([st, n]) => `${n} ${st.replace("_", " ")}`).join(" \u00b7 ") : "-");
    }
    // text channels: a row per channel (today's chats, from the store's chat routes)
    for (const [ch, f] of Object.entries(v.channels || {})) {
      const row = $(`ch-${ch}`);
      if (!row) continue;
      text(row.querySelector(".c-open"), String(f.open_now));
      text(row.querySelector(".c-offered"), String(f.offered));
      text(row.querySelector(".c-accepted"), String(f.accepted));
      text(row.querySelector(".c-abandoned"), String(f.abandoned));
      text(row.querySelector(".c-first"), mmss(f.first_response_avg_s));
      text(row.querySelector(".c-p90"), mmss(f.first_response_p90_s));
      text(row.querySelector(".c-handle"), mmss(f.handle_avg_s));
    }
    // waiting calls: one item per call, kept while it waits, removed when it is answered
    const list = $("wb-calls");
    const want = new Set(v.calls.map((c) => c.call_id));
    for (const li of Array.from(list.children)) {
      if (!want.has(li.dataset.callId)) li.remove();
    }
    for (const c of v.calls) {
      let li = list.querySelector(`li[data-call-id="${CSS.escape(c.call_id)}"]`);
      if (!li) {
        li = document.createElement("li");
        li.dataset.callId = c.call_id;
        const what = document.createElement("span");
        what.className = "wb-what";
        const wait = document.createElement("span");
        wait.className = "wb-wait";
        li.append(what, wait);
        list.append(li);
      }
      li.dataset.phase = c.phase;
      li.dataset.arrived = c.arrived;
      const q = v.queues[c.queue];
      const parts = [q ? q.name : c.queue, c.language || "", c.intent || ""].filter((x) => x);
      if (c.phase === "ringing" && c.agent) parts.push(`ringing ${c.agent}`);
      text(li.querySelector(".wb-what"), parts.join(" \u00b7 "));
    }
    $("wb-no-calls").hidden = v.calls.length > 0;
    // agents by state
    const states = $("wb-states");
    states.replaceChildren(...Object.entries(v.agents_by_state).map(([st, n]) => {
      const li = document.createElement("li");
      li.dataset.state = st;
      const b = document.createElement("strong");
      b.textContent = String(n);
      li.append(b, document.createTextNode(st.replace("_", " ")));
      return li;
    }));
    $("wb-agents").replaceChildren(...Object.entries(v.agents).map(([a, st]) => {
      const li = document.createElement("li");
      li.dataset.agent = a;
      li.dataset.state = st;
      li.textContent = `${a}: ${st.replace("_", " ")}`;
      return li;
    }));
    tick();
  }

  function tick() {
    const now = nowS();
    for (const el of document.querySelectorAll("[data-arrived]")) {
      const t = el.dataset.arrived;
      const target = el.classList.contains("wb-big") || el.classList.contains("q-longest")
        ? el : el.querySelector(".wb-wait");
      if (target) text(target, t === "" ? "-" : mmss(now - Number(t)));
    }
    text($("wb-clock"), new Date(now * 1000).toLocaleTimeString());
  }
  setInterval(tick, 250);

  function connect() {
    const live = $("wb-live");
    const es = new EventSource("/wallboard/events");
    es.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "live"; });
    es.addEventListener("live", (ev) => render(JSON.parse(ev.data)));
    es.addEventListener("ended", () => {
      es.close();
      live.dataset.state = "lost";
      live.textContent = "session ended";
      window.location.assign("/login");
    });
    es.addEventListener("error", () => { live.dataset.state = "lost"; live.textContent = "reconnecting"; });
  }
  connect();

  // ------------------------------------------------------------------ charts
  async function getJSON(path) {
    const r = await fetch(path, { credentials: "same-origin", cache: "no-store",
                                  headers: { "Accept": "application/json" } });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }
  const charts = {};
  function width(el) { return Math.max(300, el.clientWidth - 8); }
  function plot(id, opts, data) {
    const el = $(id);
    if (typeof window.uPlot === "undefined") {
      el.textContent = "charts need the browser libraries (homeline setup)";
      return;
    }
    if (charts[id]) charts[id].destroy();
    el.replaceChildren();
    charts[id] = new window.uPlot({ width: width(el), height: 220, ...opts }, data, el);
  }
  window.addEventListener("resize", () => {
    for (const [id, c] of Object.entries(charts)) c.setSize({ width: width($(id)), height: 220 });
  });

  async function day() {
    let d;
    try { d = await getJSON("/api/wallboard/day"); } catch (e) { text($("day-note"), String(e)); return; }
    text($("day-note"), `(${d.zone}, from midnight)`);
    const sl = d.service_level.map((x) => (x === null ? null : x * 100));
    const target = d.t.map(() => (d.sl_targets.length ? d.sl_targets[0] * 100 : null));
    plot("chart-sl", {
      scales: { y: { range: [0, 100] } },
      series: [{}, { label: "SL %", stroke: "#0550ae", width: 2, points: { show: true } },
               { label: "target %", stroke: "#cf222e", dash: [6, 4], points: { show: false } }],
      axes: [{}, { label: "%" }],
    }, [d.t, sl, target]);
    plot("chart-waiting", {
      scales: { y: { range: (u, min, max) => [0, Math.max(2, max)] } },
      series: [{}, { label: "waiting", stroke: "#9a6700", fill: "rgba(210,153,34,.25)", width: 2 },
               { label: "offered", stroke: "#57606a" }],
      axes: [{}, { label: "calls" }],
    }, [d.t, d.max_waiting, d.offered]);
  }

  let staffing = null;
  function drawStaffing() {
    const skill = $("staffing-skill").value;
    const s = staffing.skills[skill];
    if (!s) return;
    const x = staffing.labels.map((_, i) => i);
    plot("chart-staffing", {
      scales: { x: { time: false } },
      series: [{ label: "interval", value: (u, i) => (i === null ? "" : staffing.labels[i] || "") },
               { label: "needed (Erlang C)", stroke: "#cf222e", width: 2 },
               { label: "signed up", stroke: "#1a7f37", fill: "rgba(26,127,55,.15)", width: 2 }],
      axes: [{ values: (u, ticks) => ticks.map((i) => staffing.labels[i] || ""), space: 80 },
             { label: "agents" }],
    }, [x, s.needed, s.signed_up]);
    $("open-slots").replaceChildren(...staffing.open_slots.filter((o) => o.skill === skill).map((o) => {
      const li = document.createElement("li");
      li.textContent = `${o.window} +${o.agents}`;
      return li;
    }));
  }
  async function loadStaffing() {
    try { staffing = await getJSON("/api/wallboard/staffing"); } catch (e) { text($("staffing-why"), String(e)); return; }
    if (!staffing.available) { text($("staffing-why"), staffing.why); return; }
    text($("staffing-why"), `week of ${staffing.week_of} (${staffing.zone}); open slots: intervals short of agents`);
    const sel = $("staffing-skill");
    sel.replaceChildren(...Object.keys(staffing.skills).map((k) => {
      const o = document.createElement("option");
      o.value = k; o.textContent = k;
      return o;
    }));
    sel.addEventListener("change", drawStaffing);
    drawStaffing();
  }

  function start() { day(); loadStaffing(); setInterval(day, 60000); }
  if (document.readyState === "complete") start(); else window.addEventListener("load", start);
})();
