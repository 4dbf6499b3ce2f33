// Homeline agent portal: the small scripts of the pages.
// Changes go through the JSON API with the session's CSRF token (read from the
// page's <meta> tag, sent as X-CSRF-Token, as the API expects). Nothing is kept
// in localStorage, sessionStorage or IndexedDB: the pages carry caller data.
"use strict";

// htmx 2 notes the page's path in sessionStorage as it loads
// (htmx.js setCurrentPathForHistory, whatever the config); the portal keeps
// no history (historyEnabled: false), so that note is removed at once.
try { window.sessionStorage.removeItem("htmx-current-path-for-history"); } catch (e) { /* none */ }

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) headers["X-CSRF-Token"] = meta.content;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data };
}

function say(text) {
  const el = document.getElementById("message");
  if (el) el.textContent = text;
}

function agentId() {
  const el = document.getElementById("who");
  return el ? el.dataset.agent : "";
}

// ---------------------------------------------------------------- state timer
// The server renders how long the state has lasted (data-elapsed, seconds);
// the page counts on from when it received that fragment.
const seen = new WeakMap();
function fmt(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
}
function tick() {
  for (const el of document.querySelectorAll(".timer[data-elapsed]")) {
    if (!seen.has(el)) seen.set(el, performance.now());
    const s = Number(el.dataset.elapsed) + (performance.now() - seen.get(el)) / 1000;
    el.textContent = fmt(s);
  }
}

// ---------------------------------------------------------------- state buttons
function stateButtons() {
  const box = document.getElementById("state-buttons");
  if (!box) return;
  for (const b of box.querySelectorAll("button[data-state]")) {
    b.addEventListener("click", async () => {
      const body = { state: b.dataset.state };
      if (b.dataset.state === "break") body.reason = document.getElementById("break-reason").value;
      const r = await api("POST", `/api/agents/${encodeURIComponent(agentId())}/state`, body);
      const asked = document.getElementById("state-asked");
      if (r.ok) {
        say("");
        asked.textContent = `Asked for ${r.data.state}${r.data.reason ? " (" + r.data.reason + ")" : ""}: ` +
          "the engine applies it and the state above follows.";
      } else {
        say(r.data.error || `not changed (${r.status})`);
      }
    });
  }
}

// ---------------------------------------------------------------- take payment
// The engine runs the caller's secure capture; the page asks for the result
// (GET .../payment) until it is final: accepted, declined or failed.
const PAYMENT_TEXT = {
  requested: "Payment asked: connecting the caller to the secure capture...",
  capturing: "The caller is entering their card details (you hear silence)...",
  accepted: "Payment accepted",
  declined: "Payment declined",
  failed: "Payment not taken",
};
function paymentButton() {
  const button = document.getElementById("take-payment");
  if (!button) return;
  const status = document.getElementById("payment-status");
  const path = `/api/agents/${encodeURIComponent(agentId())}/payment`;
  let timer = null;
  const show = (p) => {
    status.dataset.status = p.status;
    status.textContent = PAYMENT_TEXT[p.status] +
      (p.status === "failed" && p.detail ? `: ${p.detail}` : "");
  };
  button.addEventListener("click", async () => {
    const r = await api("POST", path, {});
    if (!r.ok) { say(r.data.error || `payment not asked (${r.status})`); return; }
    say("");
    const seq = r.data.seq;
    show({ status: "requested" });
    button.disabled = true;
    if (timer) window.clearInterval(timer);
    timer = window.setInterval(async () => {
      const g = await api("GET", path);
      const p = g.ok ? g.data.payment : null;
      if (!p || p.seq !== seq) return;
      show(p);
      if (["accepted", "declined", "failed"].includes(p.status)) {
        window.clearInterval(timer);
        timer = null;
        button.disabled = false;
      }
    }, 500);
  });
}

// ---------------------------------------------------------------- my hours
function currentWindows() {
  return Array.from(document.querySelectorAll("#windows tr[data-window]"), (tr) => tr.dataset.window);
}

function showRefusal(r) {
  const box = document.getElementById("hours-refusal");
  const list = document.getElementById("refusal-problems");
  list.replaceChildren();
  for (const p of r.data.problems || []) {
    const li = document.createElement("li");
    li.textContent = `${p.message} [${p.code}]`;
    li.dataset.code = p.code;
    list.appendChild(li);
  }
  document.getElementById("refusal-intro").textContent =
    r.data.problems ? "The hours were not changed:" : (r.data.error || `not changed (${r.status})`);
  box.hidden = false;
}

async function saveWindows(windows) {
  const r = await api("PUT", `/api/agents/${encodeURIComponent(agentId())}/hours`, { windows });
  const box = document.getElementById("hours-refusal");
  if (r.ok) {
    box.hidden = true;
    say("");
    window.htmx.ajax("GET", "/agent/hours/panel", { target: "#hours-panel", swap: "innerHTML" });
  } else {
    showRefusal(r);
  }
  return r;
}

function windowOf(form) {
  return `${form.day.value} ${form.start.value}-${form.end.value}`;
}

function hoursPage() {
  const panel = document.getElementById("hours-panel");
  if (!panel) return;
  // delegated: the panel's content is swapped by htmx after each change
  panel.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form.move-window");
    if (!form) return;
    ev.preventDefault();
    const old = form.closest("tr").dataset.window;
    saveWindows(currentWindows().map((w) => (w === old ? windowOf(form) : w)));
  });
  panel.addEventListener("click", (ev) => {
    const cancel = ev.target.closest("button.cancel-window");
    if (cancel) {
      const old = cancel.closest("tr").dataset.window;
      saveWindows(currentWindows().filter((w) => w !== old));
      return;
    }
    const signUp = ev.target.closest("button.sign-up");
    if (signUp) saveWindows([...currentWindows(), signUp.dataset.window]);
  });
  const add = document.getElementById("add-window");
  add.addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveWindows([...currentWindows(), windowOf(add)]);
  });
}

// ---------------------------------------------------------------- login, logout, session end
// One navigation to the login page, whoever asks first: the logout button and each
// of the page's event streams ("ended") ask; a second assign() would abort the first.
let leaving = false;
function toLogin() {
  if (leaving) return;
  leaving = true;
  window.location.assign("/login");
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await api("POST", "/api/session",
        { user: form.user.value, password: form.password.value });
      form.password.value = "";
      if (r.ok) window.location.assign("/");  // the server sends agents and supervisors on
      else say(r.data.error || ("login failed (" + r.status + ")"));
    });
  }
  const out = document.getElementById("logout");
  if (out) {
    out.addEventListener("click", async () => {
      const r = await api("DELETE", "/api/session");
      if (r.ok || r.status === 401) toLogin();
      else say(r.data.error || ("logout failed (" + r.status + ")"));
    });
  }
  // the event stream says "ended" when the session is over (idle timeout, logout elsewhere)
  document.body.addEventListener("htmx:sseClose", (ev) => {
    if (ev.detail && ev.detail.type === "message") toLogin();
  });
  stateButtons();
  paymentButton();
  hoursPage();
  tick();
  window.setInterval(tick, 1000);
});
