/*
 * chat.js: the DM window and the room window.
 *
 * Config comes from data- attributes on the root element:
 *   <section id="chat" data-kind="direct|room" data-ws-path="/ws/dm/bob/"
 *            data-history-url="/api/messages/bob/" data-user-id="7"
 *            data-username="alice" data-peer="bob" data-read-only="false">
 * and, for rooms, the member usernames in <script type="application/json" id="chat-members">.
 *
 * Stable hooks for browser tests (do not rename):
 *   #chat                         the root element (data-state="open|reconnecting|closed")
 *   #message-list                 <ol> of messages, oldest first; it scrolls, the page does not
 *   #message-live                 polite live region: announces incoming live messages only
 *   .message[data-id]             one stored message, id="message-<id>" (data-client-id when it had one,
 *                                 data-version: the copy shown; only a higher version replaces it)
 *   .message.own                  sent by the current user
 *   .message.grouped              same sender as the message above, shortly after it
 *   .message.pending              sent, not yet acknowledged (data-client-id, no data-id)
 *   .message.failed               refused by the server: .retry and .discard buttons
 *   .message .sender / .body / time
 *   .body a                       http(s) links; .mention, .mention.mention-me
 *   .day-separator                "Today", "Yesterday" or a date, before a day's first message
 *   .new-divider                  "New", above the first unread message on open
 *   #new-messages                 "N new messages ↓" while scrolled up and messages arrive
 *   .message .read-marker         "Seen" on the newest own message the peer has read (DMs)
 *   #message-input                the textarea (labelled); Enter sends, Shift+Enter newline
 *   #send-button                  submits #message-form
 *   #typing-indicator             "bob is typing…", cleared after 4 s or when bob's message arrives
 *   #online-list li[data-user-id] who is in the room now (rooms)
 *   #load-older                   pages back through history (before=<oldest id>); scrolling up does too
 *   #chat-error                   the last error frame's message (role="alert")
 *   #reply-preview                "Replying to bob: …" above the composer, #reply-cancel drops it
 *   .message.targeted             the message a #message-<id> link (a quote, a mention's URL) went to
 *   Up / Down on the list or a message focus the previous / next message
 *   edits, deletes, reactions and quotes: see message_actions.js; Up on an empty composer edits
 *   your last message.
 *
 * Flow: history over HTTP (and the unread count from /api/conversations/) first,
 * then the socket, resuming with ?since=<highest version seen>: the newest page's
 * versions and every frame's count, older pages' do not (they may be newer than a
 * change the socket has not delivered yet). `message` and `message_update` frames both
 * go through one upsert: a message shown is replaced only by a higher version, so a
 * replayed copy is an update, never a second bubble. `ready.truncated` drops everything
 * and reloads the newest page. A read-only room (a public room you are not in) never
 * opens the socket, as connecting joins it. #message-<id> in the URL (a mention's
 * notification) scrolls to that message, paging back through history if needed.
 * Messages typed while offline wait in an outbox keyed by client_id (with the reply_to
 * they answer), kept in localStorage per conversation, and are (re)sent with the same
 * client_id after every `ready`, also after a reload; the server's echo with that
 * client_id replaces the pending bubble, and messages are de-duplicated by id.
 * User text is only ever inserted with textContent and DOM nodes.
 */
(function () {
  "use strict";

  var TYPING_SEND_EVERY_MS = 3000;
  var TYPING_SHOW_MS = 4000;
  var GROUP_MS = 5 * 60 * 1000;
  var NEAR_BOTTOM_PX = 80;
  var NEAR_TOP_PX = 40;
  var PAGE = 50;
  var JUMP_PAGES = 20;    // how far back a #message-<id> link pages through history
  var EXCERPT = 140;      // characters of a quoted message (bounds.REPLY_EXCERPT_CHARS)

  var root = document.getElementById("chat");
  if (!root || !window.RealtimeSocket || !window.MessageActions) { return; }

  var kind = root.dataset.kind;
  var readOnly = root.dataset.readOnly === "true";
  var me = { id: Number(root.dataset.userId), username: root.dataset.username };
  var list = document.getElementById("message-list");
  var live = document.getElementById("message-live");
  var input = document.getElementById("message-input");
  var form = document.getElementById("message-form");
  var olderButton = document.getElementById("load-older");
  var newButton = document.getElementById("new-messages");
  var typingEl = document.getElementById("typing-indicator");
  var errorEl = document.getElementById("chat-error");
  var emptyEl = document.getElementById("chat-empty");
  var onlineList = document.getElementById("online-list");
  var replyBar = document.getElementById("reply-preview");
  var replyText = document.getElementById("reply-preview-text");
  var storageKey = "outbox:" + me.id + ":" + root.dataset.wsPath;

  var known = {};
  known[me.username] = true;
  if (root.dataset.peer) { known[root.dataset.peer] = true; }
  var membersEl = document.getElementById("chat-members");
  if (membersEl) {
    try { JSON.parse(membersEl.textContent).forEach(function (name) { known[name] = true; }); } catch (e) { /* no highlights */ }
  }

  var byId = {};          // message id -> element
  var outbox = loadOutbox(); // [{client_id, body, reply_to, reply_preview, failed}] not yet acknowledged, in send order
  var highestVersion = 0; // the resume point: see the header
  var replyTo = null;     // the reply object of the message the composer answers
  var typers = {};        // username -> timer
  var peerRead = 0;       // DMs: the peer's read marker
  var lastReadSent = 0;
  var lastTypingSent = 0;
  var replay = null;      // frames received between (re)connect and ready
  var socket = null;
  var historyLoaded = false;
  var hasMore = false;
  var loadingOlder = null; // the promise of the older page being loaded
  var unseen = 0;         // messages that arrived while scrolled up
  var changes = window.MessageActions({
    me: me,
    canModerate: root.dataset.canModerate === "true",
    readOnly: readOnly,
    renderBody: renderBody,
    send: function (frame) { return Boolean(socket && replay === null && socket.send(frame)); },
    showError: showError,
    reply: startReply,
    composer: input || list,
    list: list,
    jumpTo: jumpTo
  });

  function loadOutbox() {
    try {
      var stored = JSON.parse(window.localStorage.getItem(storageKey) || "[]");
      return Array.isArray(stored) ? stored.filter(function (item) { return item && item.client_id && item.body; }) : [];
    } catch (e) { return []; }
  }

  function saveOutbox() {
    try {
      if (outbox.length) { window.localStorage.setItem(storageKey, JSON.stringify(outbox)); }
      else { window.localStorage.removeItem(storageKey); }
    } catch (e) { /* storage full or disabled: the outbox lives until reload */ }
  }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function ids() { return Object.keys(byId).map(Number); }

  function seeVersion(message) {
    highestVersion = Math.max(highestVersion, message.version || 0);
  }

  function oldestId() {
    var all = ids();
    return all.length ? Math.min.apply(null, all) : 0;
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  }

  function messages() { return list.querySelectorAll(".message"); }

  function updateEmpty() {
    if (emptyEl) { emptyEl.hidden = messages().length > 0; }
  }

  /* Message text: links (http/https only) and @mentions of known users as DOM nodes. */
  var TOKEN = /(https?:\/\/[^\s<>"]+)|(^|[^\w@])@([\w.+-]+)/gi;

  function renderBody(el, text) {
    el.textContent = "";
    var last = 0;
    var match;
    TOKEN.lastIndex = 0;
    while ((match = TOKEN.exec(text)) !== null) {
      var start = match.index;
      var node = null;
      var consumed = match[0];
      if (match[1]) {
        var url = match[1].replace(/[.,;:!?)\]'}]+$/, "");
        consumed = url;
        node = document.createElement("a");
        node.href = url;
        node.textContent = url;
        node.rel = "noopener noreferrer nofollow";
        node.target = "_blank";
      } else {
        var name = match[3].replace(/[.]+$/, "");
        start += match[2].length;
        consumed = "@" + name;
        if (Object.prototype.hasOwnProperty.call(known, name)) {
          node = document.createElement("span");
          node.className = name === me.username ? "mention mention-me" : "mention";
          node.textContent = consumed;
        }
      }
      if (node) {
        el.appendChild(document.createTextNode(text.slice(last, start)));
        el.appendChild(node);
        last = start + consumed.length;
      }
      TOKEN.lastIndex = start + consumed.length;
    }
    el.appendChild(document.createTextNode(text.slice(last)));
  }

  function buildBubble(sender, body) {
    var li = document.createElement("li");
    li.className = "message";
    li.dataset.sender = sender;
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
    renderBody(text, body);
    li.appendChild(meta);
    li.appendChild(text);
    return li;
  }

  function fillBubble(li, message) {
    li.id = "message-" + message.id;
    li.dataset.id = String(message.id);
    li.dataset.version = String(message.version || 0);
    li.dataset.at = message.created_at;
    if (message.client_id) { li.dataset.clientId = message.client_id; }
    li.classList.remove("pending", "failed");
    var actions = li.querySelector(".failed-actions");
    if (actions) { actions.remove(); }
    li.classList.toggle("own", message.sender.id === me.id);
    var time = li.querySelector("time");
    var when = new Date(message.created_at);
    time.dateTime = message.created_at;
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    time.title = when.toLocaleString();
    li.title = message.sender.username + ", " + when.toLocaleString();
    changes.render(li, message);
  }

  /* Stored messages stay sorted by id; pending and failed ones stay below them. */
  function insertSorted(li, id) {
    var stored = list.querySelectorAll(".message[data-id]");
    for (var i = stored.length - 1; i >= 0; i--) {
      if (Number(stored[i].dataset.id) < id) { stored[i].after(li); return; }
    }
    list.prepend(li);
  }

  function findPending(clientId) {
    if (!clientId) { return null; }
    var pending = list.querySelectorAll(".message.pending, .message.failed");
    for (var i = 0; i < pending.length; i++) {
      if (pending[i].dataset.clientId === clientId) { return pending[i]; }
    }
    return null;
  }

  function dropFromOutbox(clientId) {
    outbox = outbox.filter(function (item) { return item.client_id !== clientId; });
    saveOutbox();
  }

  function dayLabel(date) {
    var today = new Date();
    var yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === today.toDateString()) { return "Today"; }
    if (date.toDateString() === yesterday.toDateString()) { return "Yesterday"; }
    var options = { weekday: "long", month: "long", day: "numeric" };
    if (date.getFullYear() !== today.getFullYear()) { options.year = "numeric"; }
    return date.toLocaleDateString([], options);
  }

  /* Day separators and sender grouping, recomputed over the whole list. */
  function decorate() {
    var old = list.querySelectorAll(".day-separator");
    for (var i = 0; i < old.length; i++) { old[i].remove(); }
    var prev = null;
    var all = messages();
    for (var j = 0; j < all.length; j++) {
      var li = all[j];
      var at = li.dataset.at ? new Date(li.dataset.at) : new Date();
      var prevAt = prev && prev.dataset.at ? new Date(prev.dataset.at) : (prev ? new Date() : null);
      if (!prevAt || prevAt.toDateString() !== at.toDateString()) {
        var sep = document.createElement("li");
        sep.className = "day-separator";
        sep.textContent = dayLabel(at);
        li.before(sep);
        prevAt = null;
      }
      var divided = li.previousElementSibling && li.previousElementSibling.classList.contains("new-divider");
      li.classList.toggle("grouped", Boolean(prevAt && !divided && prev.dataset.sender === li.dataset.sender &&
        at - prevAt < GROUP_MS));
      prev = li;
    }
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  }

  function toBottom() {
    list.scrollTop = list.scrollHeight;
    unseen = 0;
    renderUnseen();
  }

  function renderUnseen() {
    newButton.hidden = unseen === 0;
    newButton.textContent = unseen + " new message" + (unseen === 1 ? "" : "s") + " ↓";
  }

  /* Show one stored message (from history, replay or live): a new bubble, or the one
     shown replaced by a higher version. True when it is new. */
  function addMessage(message) {
    if (byId[message.id]) {
      updateMessage(message);
      return false;
    }
    var li = null;
    if (message.sender.id === me.id) {
      li = findPending(message.client_id);
      dropFromOutbox(message.client_id);
    }
    known[message.sender.username] = true;
    if (li) {
      li.remove();
    } else {
      li = buildBubble(message.sender.username, message.body);
    }
    fillBubble(li, message);
    byId[message.id] = li;
    insertSorted(li, message.id);
    clearTyping(message.sender.username);
    return true;
  }

  /* A message_update (or a copy of a message shown): only a higher version replaces it.
     One not shown (older than the history loaded) is skipped: its page brings it as it is. */
  function updateMessage(message) {
    var li = byId[message.id];
    if (message.deleted && replyTo && replyTo.id === message.id) {
      cancelReply();
      showError("The message you were replying to was deleted.");
    }
    if (!li || (message.version || 0) <= Number(li.dataset.version)) { return; }
    fillBubble(li, message);
  }

  /* A live message: follow it when at the bottom (or our own), else count it. */
  function addLive(message) {
    seeVersion(message);
    var follow = nearBottom() || message.sender.id === me.id;
    if (!addMessage(message)) { return false; }
    decorate();
    updateEmpty();
    if (message.sender.id !== me.id) { live.textContent = message.sender.username + ": " + message.body; }
    if (follow) { toBottom(); } else { unseen += 1; renderUnseen(); }
    return true;
  }

  function clearAll() {
    changes.cancelEdit();
    list.textContent = "";
    byId = {};
    highestVersion = 0;
    outbox.forEach(function (item) { list.appendChild(pendingBubble(item)); });
  }

  function pendingBubble(item) {
    var li = buildBubble(me.username, item.body);
    li.classList.add("own", "pending");
    li.dataset.clientId = item.client_id;
    li.querySelector("time").textContent = "sending…";
    if (item.reply_preview) { changes.renderQuote(li, item.reply_preview); }
    if (item.failed) { markFailed(li, item.client_id); }
    return li;
  }

  function messageFrame(item) {
    var frame = { type: "message", body: item.body, client_id: item.client_id };
    if (item.reply_to) { frame.reply_to = item.reply_to; }
    return frame;
  }

  function markFailed(li, clientId) {
    li.classList.remove("pending");
    li.classList.add("failed");
    li.querySelector("time").textContent = "failed";
    if (li.querySelector(".failed-actions")) { return; }
    var actions = document.createElement("span");
    actions.className = "failed-actions";
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry link-button";
    retry.textContent = "Retry";
    retry.addEventListener("click", function () {
      var item = outbox.filter(function (entry) { return entry.client_id === clientId; })[0];
      if (!item) { return; }
      item.failed = false;
      saveOutbox();
      actions.remove();
      li.classList.remove("failed");
      li.classList.add("pending");
      li.querySelector("time").textContent = "sending…";
      if (socket && replay === null) { socket.send(messageFrame(item)); }
    });
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "discard link-button";
    discard.textContent = "Discard";
    discard.addEventListener("click", function () {
      dropFromOutbox(clientId);
      li.remove();
      updateEmpty();
      input.focus();
    });
    actions.appendChild(document.createTextNode(" — "));
    actions.appendChild(retry);
    actions.appendChild(document.createTextNode(" / "));
    actions.appendChild(discard);
    li.querySelector(".meta").appendChild(actions);
  }

  /* DMs: "Seen" on the newest own message the peer has read. */
  function renderSeen() {
    if (kind !== "direct") { return; }
    var follow = nearBottom();
    var old = list.querySelectorAll(".read-marker");
    for (var i = 0; i < old.length; i++) { old[i].remove(); }
    var own = list.querySelectorAll(".message.own[data-id]");
    for (var j = own.length - 1; j >= 0; j--) {
      if (Number(own[j].dataset.id) <= peerRead) {
        var marker = document.createElement("span");
        marker.className = "read-marker";
        marker.textContent = "Seen";
        own[j].appendChild(marker);
        break;
      }
    }
    if (follow) { list.scrollTop = list.scrollHeight; }
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
    known[user.username] = true;
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

  /* Resend what is waiting, FLUSH_PER_SECOND a second: a long outbox sent at once would
     run into the server's flood limit (10 frames a second, bursts of 20) and close the
     socket with 4429. A message acknowledged meanwhile has left the outbox and is skipped;
     one sent twice (a reconnect mid-flush) is stored once, by its client_id. */
  var FLUSH_PER_SECOND = 8;
  function flushOutbox() {
    var pending = outbox.filter(function (item) { return !item.failed; });
    (function sendSome() {
      pending.splice(0, FLUSH_PER_SECOND).forEach(function (item) {
        if (outbox.indexOf(item) !== -1 && !item.failed) {
          socket.send(messageFrame(item));
        }
      });
      if (pending.length) { window.setTimeout(sendSome, 1000); }
    })();
  }

  function onReady(frame) {
    var frames = replay || [];
    replay = null;
    if (frame.truncated) {
      // More was missed than the server replays: start over from the newest page.
      clearAll();
      loadHistory(null)
        .then(function () { decorate(); updateEmpty(); toBottom(); sendRead(); })
        .catch(function () { showError("Could not load the conversation history."); });
    } else {
      frames.forEach(function (f) {
        if (f.type === "message") { addLive(f.message); } else { onUpdate(f.message); }
      });
      changes.settle();
    }
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

  function onUpdate(message) {
    seeVersion(message);
    updateMessage(message);
  }

  function onFrame(frame) {
    if (replay && (frame.type === "message" || frame.type === "message_update")) { replay.push(frame); return; }
    switch (frame.type) {
      case "ready": onReady(frame); break;
      case "message":
        if (addLive(frame.message)) { renderSeen(); sendRead(); }
        break;
      case "message_update": onUpdate(frame.message); break;
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
    var refused = frame.message_id && byId[frame.message_id];
    // An edit, delete or reaction refused: show the message as stored again.
    if (refused && refused.message) { changes.render(refused, refused.message); }
    var pending = findPending(frame.client_id);
    if (pending && frame.code !== "rate_limited" && frame.code !== "server_error") {
      // Refused for good (empty, too long, forbidden): kept, but only resent on "Retry".
      outbox.forEach(function (item) { if (item.client_id === frame.client_id) { item.failed = true; } });
      saveOutbox();
      markFailed(pending, frame.client_id);
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

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(url + " " + response.status); }
        return response.json();
      });
  }

  /* A page of history; the newest page (no `before`) also moves the resume point. */
  function loadHistory(before) {
    var url = root.dataset.historyUrl + "?limit=" + PAGE + (before ? "&before=" + before : "");
    return fetchJson(url).then(function (data) {
      data.results.forEach(function (message) {
        if (!before) { seeVersion(message); }
        addMessage(message);
      });
      if (!before) { historyLoaded = true; }
      hasMore = data.has_more;
      olderButton.hidden = !hasMore;
      decorate();
      renderSeen();
      return data;
    });
  }

  /* Older history above, keeping what the reader looks at exactly where it was. */
  function loadOlder() {
    if (loadingOlder) { return loadingOlder; }
    if (!hasMore) { return Promise.resolve(); }
    olderButton.disabled = true;
    var fromBottom = list.scrollHeight - list.scrollTop;
    loadingOlder = loadHistory(oldestId())
      .then(function () { list.scrollTop = list.scrollHeight - fromBottom; })
      .catch(function () { showError("Could not load older messages."); })
      .then(function () { loadingOlder = null; olderButton.disabled = false; });
    return loadingOlder;
  }

  /* Scroll to a message and highlight it, paging back (at most JUMP_PAGES pages) until it is there. */
  function jumpTo(id, pagesLeft) {
    var li = byId[id];
    if (li) {
      var old = list.querySelector(".message.targeted");
      if (old) { old.classList.remove("targeted"); }
      void li.offsetWidth; // restart the highlight's animation when it is the same message again
      li.classList.add("targeted");
      li.scrollIntoView({ block: "center" });
      li.focus({ preventScroll: true });
      return;
    }
    var left = pagesLeft === undefined ? JUMP_PAGES : pagesLeft;
    if (!hasMore || left <= 0 || (ids().length && id > oldestId())) {
      showError("That message is not in this conversation's history.");
      return;
    }
    loadOlder().then(function () { jumpTo(id, left - 1); });
  }

  function hashTarget() {
    var match = /^#message-(\d+)$/.exec(window.location.hash);
    return match ? Number(match[1]) : 0;
  }

  /* The composer answers a message: "Replying to bob: …" until sent or cancelled. */
  function startReply(message) {
    if (!input || !message || message.deleted) { return; }
    replyTo = { id: message.id, sender: message.sender, excerpt: message.body.slice(0, EXCERPT), deleted: false };
    replyText.textContent = "Replying to " + message.sender.username + ": " + replyTo.excerpt;
    replyBar.hidden = false;
    input.focus();
  }

  function cancelReply() {
    replyTo = null;
    if (replyBar) { replyBar.hidden = true; }
  }

  /* The unread count of this conversation, from the inbox API (0 when unknown). */
  function unreadCount() {
    if (readOnly) { return Promise.resolve(0); }
    return fetchJson("/api/conversations/").then(function (data) {
      var mine = data.results.filter(function (entry) { return entry.url === window.location.pathname; })[0];
      return mine ? mine.unread : 0;
    }).catch(function () { return 0; });
  }

  /* "New" above the first unread message, scrolled near the top; else the newest at the bottom. */
  function openAt(unread) {
    var others = list.querySelectorAll(".message[data-id]:not(.own)");
    if (unread > 0 && others.length) {
      var first = others[Math.max(0, others.length - unread)];
      var divider = document.createElement("li");
      divider.className = "new-divider";
      divider.textContent = "New";
      first.before(divider);
      decorate();
      var target = divider.previousElementSibling && divider.previousElementSibling.classList.contains("day-separator")
        ? divider.previousElementSibling : divider;
      list.scrollTop = target.offsetTop - list.offsetTop - 8;
      if (nearBottom()) { toBottom(); }
    } else {
      toBottom();
    }
  }

  function send() {
    var body = input.value.trim();
    if (!body) { return; }
    if (body.length > 4000) { showError("Messages can be at most 4000 characters."); return; }
    var item = { client_id: newClientId(), body: body };
    if (replyTo) {
      item.reply_to = replyTo.id;
      item.reply_preview = replyTo;
      cancelReply();
    }
    outbox.push(item);
    saveOutbox();
    list.appendChild(pendingBubble(item));
    decorate();
    updateEmpty();
    input.value = "";
    showError("");
    // While offline (or before ready) the item waits in the outbox and goes out after ready.
    if (socket && replay === null) { socket.send(messageFrame(item)); }
    toBottom();
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send();
    });

    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
      } else if (event.key === "ArrowUp" && !input.value && !event.shiftKey && !event.altKey &&
                 !event.ctrlKey && !event.metaKey) {
        // As in Slack: Up on an empty composer edits your last message.
        var own = list.querySelectorAll(".message.own[data-id]:not(.deleted)");
        if (own.length && changes.edit(own[own.length - 1])) { event.preventDefault(); }
      } else if (event.key === "Escape" && replyTo) {
        event.preventDefault();
        cancelReply();
      }
    });

    document.getElementById("reply-cancel").addEventListener("click", function () {
      cancelReply();
      input.focus();
    });

    input.addEventListener("input", function () {
      var now = Date.now();
      if (input.value.trim() && socket && now - lastTypingSent >= TYPING_SEND_EVERY_MS) {
        if (socket.send({ type: "typing" })) { lastTypingSent = now; }
      }
    });
  }

  olderButton.addEventListener("click", loadOlder);
  newButton.addEventListener("click", function () { toBottom(); if (input) { input.focus(); } });
  /* Whether the reader is at the bottom, as of their last scroll: kept when the list
     resizes (an on-screen keyboard opening, a rotated phone). */
  var pinned = true;
  list.addEventListener("scroll", function () {
    pinned = nearBottom();
    if (list.scrollTop < NEAR_TOP_PX && historyLoaded) { loadOlder(); }
    if (unseen && pinned) { unseen = 0; renderUnseen(); }
  });
  if (window.ResizeObserver) {
    new window.ResizeObserver(function () { if (pinned) { list.scrollTop = list.scrollHeight; } }).observe(list);
  }

  document.addEventListener("visibilitychange", sendRead);
  window.addEventListener("hashchange", function () {
    var target = hashTarget();
    if (target && historyLoaded) { jumpTo(target); }
  });

  function connect() {
    replay = [];
    socket = new window.RealtimeSocket(root.dataset.wsPath, {
      onFrame: onFrame,
      onStatus: onStatus,
      // After a successful history load even "0" is a resume point: nothing is missed
      // between the HTTP page and the socket.
      getSince: function () { return historyLoaded ? String(highestVersion) : null; }
    });
  }

  var unreadPromise = unreadCount();
  loadHistory(null)
    .catch(function () { showError("Could not load the conversation history."); })
    .then(function () { return unreadPromise; })
    .then(function (unread) {
      outbox.forEach(function (item) {
        if (!findPending(item.client_id)) { list.appendChild(pendingBubble(item)); }
      });
      decorate();
      updateEmpty();
      openAt(unread);
      if (!readOnly) {
        connect();
        input.focus();
      }
      if (hashTarget()) { jumpTo(hashTarget()); }
    });
})();
