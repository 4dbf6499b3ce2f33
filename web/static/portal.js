// Homeline portal: the few lines the login and placeholder agent pages need.
// The CSRF token is read from the page's <meta> tag and sent in X-CSRF-Token;
// nothing is kept in localStorage or sessionStorage.
"use strict";

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) headers["X-CSRF-Token"] = meta.content;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data };
}

function say(text) {
  const el = document.getElementById("message");
  if (el) el.textContent = text;
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await api("POST", "/api/session",
        { user: form.user.value, password: form.password.value });
      form.password.value = "";
      if (r.ok) window.location.assign("/agent");
      else say(r.data.error || ("login failed (" + r.status + ")"));
    });
  }
  const out = document.getElementById("logout");
  if (out) {
    out.addEventListener("click", async () => {
      const r = await api("DELETE", "/api/session");
      if (r.ok || r.status === 401) window.location.assign("/login");
      else say(r.data.error || ("logout failed (" + r.status + ")"));
    });
  }
});
