// Homeline agent portal: the chat panel (web/chatpanel.py).
// The view (offers, chats, transcripts) comes from GET /api/chats and then from the
// /agent/chats/events stream each time it changes; actions go through the JSON API
// (api() of portal.js: the session's CSRF token). Everything the server sends is
// put in the page as text (textContent), never as HTML; nothing is kept in browser
// storage. A chat's card is built once and updated in place, so a reply being
// typed survives the updates.
"use strict";

const CHAT_PANEL = { skew: 0, limits: { reply: 1600, wrap_up: 500 }, stream: null };

function chatPath(routeId, action) {
  return `/api/chats/${encodeURIComponent(routeId)}` + (action ? `/${action}` : "");
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-(.)/g, (_, c) => c.toUpperCase())] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function chatSaid(text) {
  const s = document.getElementById("chat-said");
  if (s) s.textContent = text;
}

function clockText(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

function chatMeta(c) {
  return [c.channel, c.language || "language ?", c.intent || "no intent", c.queue_name]
    .join(" · ");
}

// ---------------------------------------------------------------- offers

function renderOffers(offers) {
  const list = document.getElementById("chat-offers");
  list.replaceChildren();
  for (const o of offers) {
    const last = [...o.transcript].reverse().find((m) => m.direction === "in");
    list.append(el("li", { class: "chat-offer", "data-route": o.route_id },
      el("strong", { class: "customer", text: o.customer }), " ",
      el("span", { class: "meta", text: chatMeta(o) }),
      last ? el("q", { class: "last-message", text: last.text }) : null, " ",
      el("span", { class: "countdown", "data-accept-by": o.accept_by || "" }), " ",
      el("button", { type: "button", class: "accept", "data-route": o.route_id, text: "Accept" }), " ",
      el("button", { type: "button", class: "pass", "data-route": o.route_id, text: "Pass" })));
  }
  document.getElementById("no-offers").hidden = offers.length > 0;
  countdown();
}

function countdown() {
  const now = Date.now() + CHAT_PANEL.skew;
  for (const span of document.querySelectorAll("#chat-offers .countdown")) {
    const by = span.dataset.acceptBy;
    const li = span.closest("li");
    const accept = li.querySelector("button.accept");
    if (!by) { span.textContent = ""; continue; }
    const left = Math.floor((Date.parse(by) - now) / 1000);
    if (left > 0) {
      span.textContent = `${left} s to accept`;
      accept.disabled = false;
    } else {
      span.textContent = "the offer has passed";
      accept.disabled = true;
    }
  }
}

// ---------------------------------------------------------------- chats

function transcriptKey(c) {
  const last = c.transcript[c.transcript.length - 1];
  return `${c.transcript.length}:${last ? last.seq : 0}`;
}

function renderTranscript(card, c) {
  const ol = card.querySelector("ol.transcript");
  if (ol.dataset.key === transcriptKey(c)) return;
  ol.dataset.key = transcriptKey(c);
  ol.replaceChildren(...c.transcript.map((m) => el("li", { class: m.direction },
    el("span", { class: "who", text: m.direction === "in" ? "Customer" : "Sent" }), " ",
    el("time", { datetime: m.at, text: clockText(m.at) }), " ",
    el("span", { class: "text", text: m.text }))));
  ol.scrollTop = ol.scrollHeight;
}

function renderEarlier(card, c) {
  const box = card.querySelector(".earlier ul");
  const items = [
    ...c.earlier.conversations.map((v) =>
      `${v.started_at ? v.started_at.slice(0, 16).replace("T", " ") : ""} ${v.channel} conversation` +
      `${v.intent ? " (" + v.intent + ")" : ""}, ${v.state}`),
    ...c.earlier.calls.map((v) =>
      `${v.at ? v.at.slice(0, 16).replace("T", " ") : ""} call ${v.call_id}` +
      `${v.queue ? " to " + v.queue : ""}${v.agent ? ", agent " + v.agent : ""}` +
      `${v.outcome ? ", " + v.outcome : ""}`),
  ];
  const key = items.join("\n");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...(items.length ? items.map((t) => el("li", { text: t }))
    : [el("li", { class: "note", text: "None: a first contact." })]));
  card.querySelector(".earlier summary").textContent = `Earlier contacts (${items.length})`;
}

function newCard(c) {
  const id = c.route_id;
  const suggest = el("select", { class: "suggestion", "aria-label": "Suggested replies" },
    el("option", { value: "", text: "Suggestions (edit before sending)…" }),
    ...c.suggestions.map((s) => el("option", { value: s, text: s })));
  const queues = el("select", { class: "transfer-queue", "aria-label": "Transfer to queue" },
    ...c.transfer_queues.map((q) => el("option", { value: q.id, text: q.name })));
  return el("article", { class: "chat", "data-route": id },
    el("header", {},
      el("strong", { class: "customer", text: c.customer }), " ",
      el("span", { class: "meta", text: chatMeta(c) })),
    el("details", { class: "earlier" }, el("summary", { text: "Earlier contacts" }), el("ul")),
    el("ol", { class: "transcript", "aria-label": `Conversation with ${c.customer}` }),
    el("div", { class: "compose" }, suggest,
      el("textarea", { class: "reply-text", rows: "3", maxlength: String(CHAT_PANEL.limits.reply),
        "aria-label": "Reply" }),
      el("button", { type: "button", class: "send", "data-route": id, text: "Send" })),
    el("div", { class: "finish" },
      el("label", {}, "Wrap-up note ",
        el("input", { class: "wrap-up", maxlength: String(CHAT_PANEL.limits.wrap_up) })),
      el("button", { type: "button", class: "close-chat", "data-route": id, text: "Close chat" }), " ",
      el("label", {}, "Transfer to ", queues),
      el("button", { type: "button", class: "transfer", "data-route": id, text: "Transfer" })));
}

function renderChats(chats) {
  const box = document.getElementById("chats");
  const keep = new Set(chats.map((c) => c.route_id));
  for (const card of box.querySelectorAll("article.chat")) {
    if (!keep.has(card.dataset.route)) card.remove();
  }
  for (const c of chats) {
    let card = Array.from(box.querySelectorAll("article.chat"))
      .find((a) => a.dataset.route === c.route_id);
    if (!card) {
      card = newCard(c);
      box.append(card);
    }
    renderTranscript(card, c);
    renderEarlier(card, c);
  }
}

function renderChatView(view) {
  const panel = document.getElementById("chat-panel");
  if (!view.takes_chats) { panel.hidden = true; return; }
  panel.hidden = false;
  CHAT_PANEL.limits = view.limits || CHAT_PANEL.limits;
  if (view.server_now) CHAT_PANEL.skew = Date.parse(view.server_now) - Date.now();
  document.getElementById("chat-load").textContent =
    `(${view.chats.length} of at most ${view.max_chats} at a time)`;
  renderOffers(view.offers);
  renderChats(view.chats);
}

async function refreshChats() {
  const r = await api("GET", "/api/chats");
  if (r.ok) renderChatView(r.data);
  return r;
}

// ---------------------------------------------------------------- actions

async function chatAction(routeId, action, body, done) {
  const r = await api("POST", chatPath(routeId, action), body);
  if (r.ok) { say(""); chatSaid(done(r.data)); }
  else say(r.data.error || `not done (${r.status})`);
  await refreshChats();
  return r;
}

function chatPanel() {
  const panel = document.getElementById("chat-panel");
  if (!panel) return;
  panel.addEventListener("change", (ev) => {
    const s = ev.target.closest("select.suggestion");
    if (!s || !s.value) return;
    const text = s.closest("article").querySelector("textarea.reply-text");
    text.value = s.value;  // a suggestion only prefills: the agent edits and sends
    s.value = "";
    text.focus();
  });
  panel.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-route]");
    if (!b || b.disabled) return;
    const id = b.dataset.route;
    const card = b.closest("article.chat");
    if (b.classList.contains("accept")) {
      chatAction(id, "accept", {}, () => "Chat accepted: it is below.");
    } else if (b.classList.contains("pass")) {
      chatAction(id, "pass", {}, () => "Passed: the next agent gets it.");
    } else if (b.classList.contains("send")) {
      const text = card.querySelector("textarea.reply-text");
      chatAction(id, "reply", { text: text.value }, () => "Reply sent.")
        .then((r) => { if (r.ok) text.value = ""; });
    } else if (b.classList.contains("close-chat")) {
      const note = card.querySelector("input.wrap-up").value;
      chatAction(id, "close", note.trim() ? { wrap_up: note } : {}, () => "Chat closed.");
    } else if (b.classList.contains("transfer")) {
      const queue = card.querySelector("select.transfer-queue").value;
      const note = card.querySelector("input.wrap-up").value;
      chatAction(id, "transfer", note.trim() ? { queue, wrap_up: note } : { queue },
        (d) => `Transferred to ${d.queue}: it waits there for an agent.`);
    }
  });
  refreshChats().then((r) => {
    if (!r.ok || !r.data.takes_chats) return;  // no chats for this agent: no stream
    const es = new EventSource("/agent/chats/events");
    CHAT_PANEL.stream = es;
    es.addEventListener("chats", (ev) => renderChatView(JSON.parse(ev.data)));
    es.addEventListener("ended", () => { es.close(); toLogin(); });
  });
  window.setInterval(countdown, 250);
}

document.addEventListener("DOMContentLoaded", chatPanel);
