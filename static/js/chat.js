/*
 * chat.js: the DM window and the room window.
 *
 * Config comes from data- attributes on the root element:
 *   <section id="chat" data-kind="direct|room" data-ws-path="/ws/dm/bob/"
 *            data-history-url="/api/messages/bob/" data-user-id="7"
 *            data-username="alice" data-peer="bob">
 *
 * Stable hooks for browser tests (do not rename):
 *   #chat                         the root element (data-state="open|reconnecting|closed")
 *   #message-list                 <ol aria-live="polite"> of messages, oldest first
 *   .message[data-id]             one stored message (data-client-id when it had one)
 *   .message.own                  sent by the current user
 *   .message.pending              sent, not yet acknowledged (data-client-id, no data-id)
 *   .message.failed               refused by the server (the error text follows it)
 *   .message .sender / .body / time
 *   .message .read-marker         "Seen" on the newest own message the peer has read (DMs)
 *   #message-input                the textarea (labelled); Enter sends, Shift+Enter newline
 *   #send-button                  submits #message-form
 *   #typing-indicator             "bob is typing…", cleared after 4 s or when bob's message arrives
 *   #online-list li[data-user-id] who is in the room now (rooms)
 *   #load-older                   pages back through history (before=<oldest id>)
 *   #chat-error                   the last error frame's message (role="alert")
 *
 * Flow: history over HTTP first, then the socket, resuming with ?after=<newest id>.
 * Messages typed while offline wait in an outbox keyed by client_id and are
 * (re)sent after every `ready`; the server's echo with the same client_id
 * replaces the pending bubble, and messages are de-duplicated by id.
 * User text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var TYPING_SEND_EVERY_MS = 3000;
  var TYPING_SHOW_MS = 4000;
  var PAGE = 50;

  var root = document.getElementById("chat");
  if (!root || !window.RealtimeSocket) { return; }

  var kind = root.dataset.kind;
  var me = { id: Number(root.dataset.userId), username: root.dataset.username };
  var list = document.getElementById("message-list");
  var input = document.getElementById("message-input");
  var form = document.getElementById("message-form");
  var olderButton = document.getElementById("load-older");
  var typingEl = document.getElementById("typing-indicator");
  var errorEl = document.getElementById("chat-error");
  var emptyEl = document.getElementById("chat-empty");
  var onlineList = document.getElementById("online-list");

  var byId = {};          // message id -> element
  var outbox = [];        // [{client_id, body}] not yet acknowledged, in send order
  var typers = {};        // username -> timer
  var peerRead = 0;       // DMs: the peer's read marker
  var lastReadSent = 0;
  var lastTypingSent = 0;
  var replay = null;      // frames received between (re)connect and ready
  var socket = null;
  var historyLoaded = false;

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function ids() {
    return Object.keys(byId).map(Number);
  }

  function newestId() {
    var all = ids();
    return all.length ? Math.max.apply(null, all) : 0;
  }

  function oldestId() {
    var all = ids();
    return all.length ? Math.min.apply(null, all) : 0;
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  }

  function updateEmpty() {
    if (emptyEl) { emptyEl.hidden = list.children.length > 0; }
  }

  function buildBubble(sender, body) {
    var li = document.createElement("li");
    li.className = "message";
    var meta = document.createElement("p");
    meta.className = "meta";
    var who = document.createElement("span");
    who.className = "sender";
    who.textContent = sender;
    meta.appendChild(who);
    var time = document.createElement("time");
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(time);
    var text = document.createElement("p");
    text.className = "body";
    text.textContent = body;
    li.appendChild(meta);
    li.appendChild(text);
    return li;
  }

  function fillBubble(li, message) {
    li.dataset.id = String(message.id);
    if (message.client_id) { li.dataset.clientId = message.client_id; }
    li.classList.remove("pending");
    li.classList.toggle("own", message.sender.id === me.id);
    var time = li.querySelector("time");
    var when = new Date(message.created_at);
    time.dateTime = message.created_at;
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    time.title = when.toLocaleString();
  }

  /* Stored messages stay sorted by id; pending and failed ones stay below them. */
  function insertSorted(li, id) {
    var children = list.children;
    for (var i = children.length - 1; i >= 0; i--) {
      var otherId = Number(children[i].dataset.id);
      if (otherId && otherId < id) { children[i].after(li); return; }
    }
    list.prepend(li);
  }

  function findPending(clientId) {
    if (!clientId) { return null; }
    var pending = list.querySelectorAll(".message.pending");
    for (var i = 0; i < pending.length; i++) {
      if (pending[i].dataset.clientId === clientId) { return pending[i]; }
    }
    return null;
  }

  function dropFromOutbox(clientId) {
    outbox = outbox.filter(function (item) { return item.client_id !== clientId; });
  }

  /* Show one stored message (from history, replay or live); idempotent by id. */
  function addMessage(message) {
    if (byId[message.id]) { return false; }
    var li = null;
    if (message.sender.id === me.id) {
      li = findPending(message.client_id);
      dropFromOutbox(message.client_id);
    }
    if (li) {
      li.remove();
    } else {
      li = buildBubble(message.sender.username, message.body);
    }
    fillBubble(li, message);
    byId[message.id] = li;
    insertSorted(li, message.id);
    clearTyping(message.sender.username);
    updateEmpty();
    return true;
  }

  function clearAll() {
    list.textContent = "";
    byId = {};
    outbox.forEach(function (item) { list.appendChild(pendingBubble(item)); });
  }

  function pendingBubble(item) {
    var li = buildBubble(me.username, item.body);
    li.classList.add("own", "pending");
    li.dataset.clientId = item.client_id;
    li.querySelector("time").textContent = "sending…";
    return li;
  }

  /* DMs: "Seen" on the newest own message the peer has read. */
  function renderSeen() {
    if (kind !== "direct") { return; }
    var old = list.querySelectorAll(".read-marker");
    for (var i = 0; i < old.length; i++) { old[i].remove(); }
    var own = list.querySelectorAll(".message.own[data-id]");
    for (var j = own.length - 1; j >= 0; j--) {
      if (Number(own[j].dataset.id) <= peerRead) {
        var marker = document.createElement("span");
        marker.className = "read-marker";
        marker.textContent = "Seen";
        own[j].appendChild(marker);
        return;
      }
    }
  }

  function setTyping(username) {
    if (typers[username]) { clearTimeout(typers[username]); }
    typers[username] = setTimeout(function () { clearTyping(username); }, TYPING_SHOW_MS);
    renderTyping();
  }

  function clearTyping(username) {
    if (!typers[username]) { return; }
    clearTimeout(typers[username]);
    delete typers[username];
    renderTyping();
  }

  function renderTyping() {
    var names = Object.keys(typers);
    if (!names.length) { typingEl.textContent = ""; return; }
    typingEl.textContent = names.join(", ") + (names.length === 1 ? " is typing…" : " are typing…");
  }

  function setOnline(users) {
    if (!onlineList) { return; }
    onlineList.textContent = "";
    users.forEach(addOnline);
  }

  function addOnline(user) {
    if (!onlineList || onlineList.querySelector('li[data-user-id="' + user.id + '"]')) { return; }
    var li = document.createElement("li");
    li.dataset.userId = String(user.id);
    li.textContent = user.username;
    // Kept in username order, like the server's "online" list.
    var after = Array.prototype.find.call(onlineList.children, function (other) {
      return other.textContent > user.username;
    });
    onlineList.insertBefore(li, after || null);
  }

  function removeOnline(user) {
    if (!onlineList) { return; }
    var li = onlineList.querySelector('li[data-user-id="' + user.id + '"]');
    if (li) { li.remove(); }
  }

  /* Tell the server we read the newest message, when the window is visible. */
  /* In rooms every member's read frame goes to every member, so reads are sent at
     most once per ROOM_READ_MS (trailing); in DMs at once, for the "Seen" mark. */
  var ROOM_READ_MS = 5000;
  var readTimer = null;
  var lastReadAt = 0;

  function sendRead() {
    if (kind !== "room") { sendReadNow(); return; }
    if (readTimer) { return; }
    var wait = Math.max(0, lastReadAt + ROOM_READ_MS - Date.now());
    readTimer = setTimeout(function () { readTimer = null; lastReadAt = Date.now(); sendReadNow(); }, wait);
  }

  function sendReadNow() {
    if (document.visibilityState !== "visible" || !socket) { return; }
    var newest = 0;
    var stored = list.querySelectorAll(".message[data-id]:not(.own)");
    if (stored.length) { newest = Number(stored[stored.length - 1].dataset.id); }
    if (newest > lastReadSent && socket.send({ type: "read", message_id: newest })) {
      lastReadSent = newest;
    }
  }

  function flushOutbox() {
    outbox.forEach(function (item) {
      socket.send({ type: "message", body: item.body, client_id: item.client_id });
    });
  }

  function onReady(frame) {
    var frames = replay || [];
    replay = null;
    if (frame.truncated) {
      // More was missed than the server replays: start over from the newest.
      clearAll();
      olderButton.hidden = false;
    }
    frames.forEach(function (f) { addMessage(f.message); });
    if (kind === "direct" && frame.read && frame.peer) {
      peerRead = Math.max(peerRead, frame.read[frame.peer.username] || 0);
      lastReadSent = Math.max(lastReadSent, frame.read[me.username] || 0);
    }
    if (kind === "room") { setOnline(frame.online || []); }
    renderSeen();
    showError("");
    flushOutbox();
    sendRead();
  }

  function onFrame(frame) {
    if (replay && frame.type === "message") { replay.push(frame); return; }
    switch (frame.type) {
      case "ready": onReady(frame); break;
      case "message":
        if (addMessage(frame.message)) { renderSeen(); sendRead(); }
        break;
      case "typing": if (frame.user.id !== me.id) { setTyping(frame.user.username); } break;
      case "read":
        if (kind === "direct" && frame.user.id !== me.id) {
          peerRead = Math.max(peerRead, frame.message_id);
          renderSeen();
        }
        break;
      case "join": addOnline(frame.user); break;
      case "leave": removeOnline(frame.user); clearTyping(frame.user.username); break;
      case "error": onError(frame); break;
      default: break;
    }
  }

  function onError(frame) {
    var pending = findPending(frame.client_id);
    if (pending && frame.code !== "rate_limited" && frame.code !== "server_error") {
      // Refused for good (empty, too long, forbidden): never resend it.
      dropFromOutbox(frame.client_id);
      pending.classList.remove("pending");
      pending.classList.add("failed");
      pending.querySelector("time").textContent = "not sent";
    }
    showError(frame.message);
  }

  function onStatus(state, code) {
    root.dataset.state = state;
    if (state === "connecting" || state === "reconnecting") { replay = []; }
    window.RealtimeSocket.showStatus("chat", state, code);
    if (state === "closed" && code === 4403) {
      input.disabled = true;
      document.getElementById("send-button").disabled = true;
      showError("You can no longer send messages here.");
    }
  }

  function loadHistory(before) {
    var url = root.dataset.historyUrl + "?limit=" + PAGE + (before ? "&before=" + before : "");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("history " + response.status); }
        return response.json();
      })
      .then(function (data) {
        data.results.forEach(addMessage);
        if (!before) { historyLoaded = true; }
        olderButton.hidden = !data.has_more;
        renderSeen();
        return data;
      });
  }

  function send() {
    var body = input.value.trim();
    if (!body) { return; }
    if (body.length > 4000) { showError("Messages can be at most 4000 characters."); return; }
    var item = { client_id: newClientId(), body: body };
    outbox.push(item);
    list.appendChild(pendingBubble(item));
    updateEmpty();
    input.value = "";
    showError("");
    // While offline (or before ready) the item waits in the outbox and goes out after ready.
    if (socket && replay === null) {
      socket.send({ type: "message", body: item.body, client_id: item.client_id });
    }
    list.lastElementChild.scrollIntoView({ block: "end" });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });

  input.addEventListener("input", function () {
    var now = Date.now();
    if (input.value.trim() && socket && now - lastTypingSent >= TYPING_SEND_EVERY_MS) {
      if (socket.send({ type: "typing" })) { lastTypingSent = now; }
    }
  });

  olderButton.addEventListener("click", function () {
    olderButton.disabled = true;
    loadHistory(oldestId())
      .catch(function () { showError("Could not load older messages."); })
      .then(function () { olderButton.disabled = false; });
  });

  document.addEventListener("visibilitychange", sendRead);

  function connect() {
    replay = [];
    socket = new window.RealtimeSocket(root.dataset.wsPath, {
      onFrame: onFrame,
      onStatus: onStatus,
      // After a successful history load even "0" is a resume point: nothing is missed
      // between the HTTP page and the socket.
      getAfter: function () { return historyLoaded ? String(newestId()) : null; }
    });
  }

  loadHistory(null)
    .catch(function () { showError("Could not load the conversation history."); })
    .then(function () {
      updateEmpty();
      connect();
      var last = list.lastElementChild;
      if (last) { last.scrollIntoView({ block: "end" }); }
    });
})();
