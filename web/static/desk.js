// Homeline supervisor desk and the agent's "raise hand": the small scripts of both.
// Changes go through the JSON API (api() of portal.js: CSRF token from the page's
// <meta>); the lists themselves come from the pages' event streams (htmx sse), so
// the buttons are found by delegation: the fragments are swapped under them.
"use strict";

// "how long ago": the server renders data-since (epoch seconds); counted on here
function sinceTick() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".since[data-since]")) {
    el.textContent = fmt(now - Number(el.dataset.since));
  }
}

function deskSaid(text) {
  const el = document.getElementById("desk-said");
  if (el) el.textContent = text;
  else say(text);
}

async function deskAction(method, path, body, done) {
  const r = await api(method, path, body);
  if (r.ok) { say(""); deskSaid(done(r.data)); }
  else say(r.data.error || `not done (${r.status})`);
  return r;
}

function deskPage() {
  const live = document.getElementById("desk-live");
  if (!live) return;
  live.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b || b.disabled) return;
    const hand = b.dataset.hand;
    if (b.classList.contains("spy")) {
      deskAction("POST", "/api/desk/supervise",
        { agent: b.dataset.agent, call: b.dataset.call, mode: b.dataset.mode },
        (d) => `${d.mode} on ${d.agent}'s call: your phone (${d.ringing}) rings, answer it.`);
    } else if (b.classList.contains("pick-up")) {
      deskAction("POST", `/api/desk/hands/${hand}/pick-up`, {},
        () => `Hand ${hand} picked up: the agent sees it.`);
    } else if (b.classList.contains("reply")) {
      const input = live.querySelector(`input.reply-text[data-hand="${hand}"]`);
      deskAction("POST", `/api/desk/hands/${hand}/reply`, { text: input ? input.value : "" },
        () => `Reply sent to hand ${hand}.`).then((r) => { if (r.ok && input) input.value = ""; });
    } else if (b.classList.contains("lower")) {
      deskAction("POST", `/api/desk/hands/${hand}/lower`, {}, () => `Hand ${hand} lowered.`);
    } else if (b.classList.contains("set-state")) {
      deskAction("POST", `/api/desk/agents/${encodeURIComponent(b.dataset.agent)}/state`,
        { state: b.dataset.state, reason: "from the supervisor desk" },
        (d) => `Asked for ${d.state} for ${d.agent} (${d.reason}).`);
    }
  });
}

function handPanel() {
  const raise = document.getElementById("raise-hand");
  if (!raise) return;
  raise.addEventListener("click", async () => {
    const input = document.getElementById("hand-text");
    const r = await api("POST", "/api/hand", { text: input.value });
    if (r.ok) { say(""); input.value = ""; }
    else say(r.data.error || `hand not raised (${r.status})`);
  });
  document.getElementById("lower-hand").addEventListener("click", async () => {
    const r = await api("DELETE", "/api/hand");
    if (!r.ok) say(r.data.error || `hand not lowered (${r.status})`);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  deskPage();
  handPanel();
  sinceTick();
  window.setInterval(sinceTick, 1000);
  // a fragment just swapped in by the event stream shows its times at once
  document.body.addEventListener("htmx:sseMessage", sinceTick);
});
