// Homeline: the phone in the page, the agent's in the portal and a WebRTC
// supervisor's on the desk (web/templates/_phone.html). JsSIP (served from the npm
// cache under /static/vendor/) registers over secure WebSocket to Asterisk's
// res_pjsip WebSocket transport (RFC 7118) with the identity that the section's
// data-config URL gives (GET /api/agents/{id}/phone, GET /api/desk/phone: each
// user's own endpoint only); an incoming call rings (a routed call for an agent,
// the desk's listen/whisper/barge for a supervisor), the user answers or hangs up
// with the buttons, the far end's audio plays in the page's <audio> element. Media is DTLS-SRTP,
// negotiated by the browser (the endpoint has webrtc=yes on the Asterisk side).
// Nothing is stored in the browser: the credential lives in this closure only.
"use strict";

(function () {
  function el(id) { return document.getElementById(id); }

  function status(text, state) {
    const s = el("phone-status");
    s.textContent = text;
    s.dataset.state = state || text;
  }

  // a ring tone from WebAudio (no audio file to fetch): 0.4 s at 440+480 Hz every 2 s
  let ringTimer = null, audioCtx = null;
  function ring(on) {
    if (ringTimer) { window.clearInterval(ringTimer); ringTimer = null; }
    if (!on) return;
    try {
      audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
    } catch (e) { return; }
    const burst = () => {
      const g = audioCtx.createGain();
      g.gain.value = 0.05;
      g.connect(audioCtx.destination);
      for (const f of [440, 480]) {
        const o = audioCtx.createOscillator();
        o.frequency.value = f;
        o.connect(g);
        o.start();
        o.stop(audioCtx.currentTime + 0.4);
      }
    };
    burst();
    ringTimer = window.setInterval(burst, 2000);
  }

  async function start() {
    const box = el("phone");
    if (!box) return;
    const resp = await fetch(box.dataset.config,
      { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } });
    const conf = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      status(conf.error || `no phone (${resp.status})`, "unavailable");
      return;
    }
    if (!window.JsSIP) {
      status("the JsSIP library is not installed: run `homeline setup`", "unavailable");
      return;
    }
    const answer = el("phone-answer"), hangup = el("phone-hangup"), audio = el("phone-audio");
    const ua = new window.JsSIP.UA({
      sockets: [new window.JsSIP.WebSocketInterface(conf.wss_url)],
      uri: conf.sip_uri,
      authorization_user: conf.authorization_user,
      password: conf.password,
      register: true,
      session_timers: false,
    });
    let session = null;
    const pcConfig = { iceServers: conf.ice_servers || [] };

    function idle() {
      session = null;
      ring(false);
      answer.disabled = true;
      hangup.disabled = true;
      el("phone-call").textContent = "";
      audio.srcObject = null;
    }

    ua.on("connecting", () => status("connecting", "connecting"));
    ua.on("connected", () => status("connected, registering", "connected"));
    ua.on("disconnected", () => status("disconnected from " + conf.wss_url, "disconnected"));
    ua.on("registered", () => status("registered", "registered"));
    ua.on("unregistered", () => status("not registered", "unregistered"));
    ua.on("registrationFailed", (e) => status("registration failed: " + (e.cause || "?"), "failed"));

    ua.on("newRTCSession", (e) => {
      if (e.originator !== "remote") return;
      if (session) { e.session.terminate({ status_code: 486 }); return; }  // busy here
      session = e.session;
      const from = session.remote_identity.display_name || session.remote_identity.uri.user;
      el("phone-call").textContent = "Ringing: " + from;
      status("ringing", "ringing");
      ring(true);
      answer.disabled = false;
      hangup.disabled = false;
      session.on("peerconnection", (ev) => {
        ev.peerconnection.addEventListener("track", (t) => {
          if (t.streams && t.streams[0]) audio.srcObject = t.streams[0];
        });
      });
      session.on("accepted", () => {
        ring(false);
        answer.disabled = true;
        el("phone-call").textContent = "On a call: " + from;
        status("on a call", "in-call");
      });
      session.on("ended", () => { idle(); status("registered", "registered"); });
      session.on("failed", () => { idle(); status("registered", "registered"); });
    });

    answer.addEventListener("click", () => {
      if (session) session.answer({ mediaConstraints: { audio: true, video: false }, pcConfig });
    });
    hangup.addEventListener("click", () => { if (session) session.terminate(); });
    window.addEventListener("beforeunload", () => ua.stop());
    status("starting", "starting");
    ua.start();
  }

  document.addEventListener("DOMContentLoaded", () => { start(); });
})();
