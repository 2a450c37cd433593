/*
 * RealtimeSocket: one WebSocket that reconnects by itself.
 *
 * - Exponential back-off with full jitter (0.5 s doubling up to 30 s) after
 *   network faults and 1000/1001/1006/1011/1012 closes; it starts over when the
 *   server's "ready" arrives, not when the socket merely opens.
 * - Resumes: every (re)connect asks getAfter() for the newest id the page has
 *   and adds ?after=<id>, so the server replays what was missed; or, with a
 *   getSince() option (chat sockets, protocol 1.1), ?since=<highest message
 *   version seen>, which also replays edits, deletes and reactions.
 * - Stops on 4401 (goes to the login page), 4403 and 4404; backs off for a
 *   minute on 4429; reconnects after 1.5-2.5 s on 4001 (session changed).
 * - Reports its state to onStatus("connecting"|"open"|"reconnecting"|"closed", code)
 *   and shows it in #connection-status, hidden again the moment every socket is
 *   back, with a "Retry now" button (#connection-retry) that skips the back-off.
 */
(function () {
  "use strict";

  var STOP_CODES = { 4401: "not logged in", 4403: "not allowed", 4404: "not found" };

  function RealtimeSocket(path, options) {
    this.path = path;
    this.onFrame = options.onFrame || function () {};
    this.onStatus = options.onStatus || function () {};
    this.onOpen = options.onOpen || function () {};
    this.getAfter = options.getAfter || function () { return null; };
    this.getSince = options.getSince || function () { return null; };
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.timer = null;
    RealtimeSocket.all.push(this);
    this.connect();
  }

  RealtimeSocket.all = [];

  /* Reconnect every waiting socket now instead of after its back-off ("Retry now"). */
  RealtimeSocket.retryNow = function () {
    RealtimeSocket.all.forEach(function (socket) {
      if (socket.stopped || socket.ws || !socket.timer) { return; }
      clearTimeout(socket.timer);
      socket.timer = null;
      socket.connect();
    });
  };

  RealtimeSocket.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var since = this.getSince();
    var after = since ? null : this.getAfter();
    var query = since ? "?since=" + encodeURIComponent(since) : (after ? "?after=" + encodeURIComponent(after) : "");
    return scheme + window.location.host + this.path + query;
  };

  RealtimeSocket.prototype.connect = function () {
    var self = this;
    self.onStatus(self.attempt ? "reconnecting" : "connecting");
    var ws = new WebSocket(self.url());
    self.ws = ws;
    ws.onopen = function () {
      self.onStatus("open");
      self.onOpen();
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (!frame || typeof frame.type !== "string") { return; }
      /* The back-off starts over only once the server is really serving this socket:
         a server that accepts and then fails (overloaded, restarting) must not be
         hammered every half second by every tab. */
      if (frame.type === "ready") { self.attempt = 0; }
      self.onFrame(frame);
    };
    ws.onclose = function (event) { self.closed(event.code); };
  };

  RealtimeSocket.prototype.closed = function (code) {
    this.ws = null;
    if (this.stopped) { return; }
    if (code === 4401 && Date.now() - (this.lastReauth || 0) < 15000 && !this.retriedAfterReauth) {
      /* Just after a 4001 the browser may still be swapping its session cookie
         (a password change in another tab): try once more before giving up. */
      this.retriedAfterReauth = true;
      this.onStatus("reconnecting", code);
      var retry = this;
      setTimeout(function () { if (!retry.stopped) { retry.connect(); } }, 3000);
      return;
    }
    if (code === 4401) {
      this.stopped = true;
      this.onStatus("closed", code);
      window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
      return;
    }
    if (STOP_CODES[code]) {
      this.stopped = true;
      this.onStatus("closed", code);
      return;
    }
    if (code === 4001 && Date.now() - (this.lastReauth || 0) > 10000) {
      this.lastReauth = Date.now();
      this.retriedAfterReauth = false;
      /* The session changed: reconnect soon; the new handshake re-authenticates.
         The short wait lets a password change's response renew the cookie first. */
      this.onStatus("reconnecting", code);
      var again = this;
      again.timer = setTimeout(function () { again.timer = null; if (!again.stopped) { again.connect(); } }, 1500 + Math.random() * 1000);
      return;
    }
    this.attempt += 1;
    var ceiling = Math.min(30000, 500 * Math.pow(2, this.attempt - 1));
    var delay = code === 4429 ? 60000 + Math.random() * 30000 : Math.random() * ceiling + 250;
    this.onStatus("reconnecting", code);
    var self = this;
    self.timer = setTimeout(function () { self.timer = null; if (!self.stopped) { self.connect(); } }, delay);
  };

  RealtimeSocket.prototype.isOpen = function () {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  };

  RealtimeSocket.prototype.send = function (frame) {
    if (!this.isOpen()) { return false; }
    this.ws.send(JSON.stringify(frame));
    return true;
  };

  RealtimeSocket.prototype.stop = function () {
    this.stopped = true;
    if (this.ws) { this.ws.close(1000); }
  };

  /* Shows the worst state of all sockets on the page in #connection-status. */
  var states = {};
  RealtimeSocket.showStatus = function (name, state, code) {
    states[name] = state;
    var el = document.getElementById("connection-status");
    if (!el) { return; }
    var reconnecting = Object.keys(states).some(function (key) { return states[key] === "reconnecting"; });
    if (reconnecting) {
      if (el.dataset.state !== "reconnecting") {
        el.textContent = "Connection lost. Reconnecting… ";
        var retry = document.createElement("button");
        retry.type = "button";
        retry.id = "connection-retry";
        retry.className = "secondary";
        retry.textContent = "Retry now";
        retry.addEventListener("click", RealtimeSocket.retryNow);
        el.appendChild(retry);
      }
      el.dataset.state = "reconnecting";
      el.hidden = false;
    } else if (state === "closed" && code === 4403) {
      el.textContent = "You are not allowed here.";
      el.dataset.state = "closed";
      el.hidden = false;
    } else if (state === "closed" && code === 4404) {
      el.textContent = "Not found.";
      el.dataset.state = "closed";
      el.hidden = false;
    } else {
      el.textContent = "";
      el.dataset.state = "open";
      el.hidden = true;
    }
  };

  window.RealtimeSocket = RealtimeSocket;
})();
