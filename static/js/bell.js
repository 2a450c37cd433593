/*
 * The notification bell on every logged-in page (templates/notifications/_bell.html).
 *
 * Stable element ids and classes (browser tests target them):
 *   #bell                wrapper; config in data-socket-path, data-api-url,
 *                        data-read-url, data-csrf-token, data-last-id
 *   #bell-button         opens/closes the dropdown; aria-expanded="true|false"
 *   #bell-badge          unread count as its text (and data-count); hidden when 0
 *   #bell-live           aria-live region: announces new notifications and the count
 *   #bell-dropdown       the dropdown; hidden while closed
 *   #bell-list           the dropdown's list of items:
 *     li.notification-item[data-id]      one notification; class "unread" while unread
 *       a.notification-link              its text, linking to its url
 *       button.notification-mark-read    marks it read (hidden once read)
 *   #bell-empty          shown while the list is empty
 *   #bell-mark-all       marks all read
 *   #bell-desktop        asks for desktop-notification permission (desktop.js); hidden once answered
 *   #messages-badge      (base.html) unread direct messages: "ready" inbox_unread
 *                        and "inbox" frames; hidden when 0
 *
 *   #rooms-badge         (base.html) a dot while a room has unread messages
 *   #notification-page-list, #notifications-unread   the /notifications/ page, kept live
 *   #conversation-list   the /messages/ page, re-rendered from /api/conversations/ live,
 *                        and moved on by each room message the bell receives
 *
 * Keyboard: the button opens and closes the dropdown (Enter/Space); ArrowDown/ArrowUp
 * move through its links and buttons, Home/End jump to the first/last, Tab walks
 * them too; Escape closes it and returns focus to the button, and focus leaving
 * it closes it. Times are relative ("2 min ago") with the full time on hover.
 * The page title carries the unread count (notifications plus direct messages).
 * Live updates come from /ws/notifications/ through RealtimeSocket (socket.js),
 * which reconnects and resumes with ?after=<highest notification id seen>; items
 * are kept by id, so a notification is never shown twice; a grouped one removes
 * the ids it ``replaces`` (here, in the list and on the /notifications/ page).
 * While the tab is hidden, live notifications and direct messages that raise the
 * inbox total also show as desktop notifications (desktop.js); replayed ones do not.
 * All server text is inserted with textContent.
 */
(function () {
  "use strict";

  var root = document.getElementById("bell");
  if (!root || !window.RealtimeSocket) { return; }

  var SHOWN = 20;
  var button = document.getElementById("bell-button");
  var badge = document.getElementById("bell-badge");
  var live = document.getElementById("bell-live");
  var dropdown = document.getElementById("bell-dropdown");
  var list = document.getElementById("bell-list");
  var empty = document.getElementById("bell-empty");
  var markAllButton = document.getElementById("bell-mark-all");
  var messagesBadge = document.getElementById("messages-badge");

  var roomsBadge = document.getElementById("rooms-badge");
  var pageList = document.getElementById("notification-page-list");
  var pageUnread = document.getElementById("notifications-unread");
  var conversationList = document.getElementById("conversation-list");
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  var inboxUnread = 0;

  var replaying = true;  // frames before "ready" are a resume's replay, not news
  var items = {};   // id -> notification object (PROTOCOL.md)
  var nodes = {};   // id -> its <li>
  var lastId = parseInt(root.dataset.lastId, 10) || 0;
  var unread = parseInt(badge.dataset.count, 10) || 0;

  function announce(text) {
    live.textContent = text;
  }

  /* ``news``: the text of a new notification, announced together with the count. */
  function setUnread(count, news) {
    if (typeof count !== "number" || count < 0) { return; }
    var summary = count === 0 ? "No unread notifications" : count + " unread notification" + (count === 1 ? "" : "s");
    if (news) {
      announce("New notification: " + news + ". " + summary);
    } else if (count !== unread) {
      announce(summary);
    }
    unread = count;
    badge.textContent = String(count);
    badge.dataset.count = String(count);
    badge.hidden = count === 0;
    if (pageUnread) { pageUnread.textContent = count + " unread"; }
    renderTitle();
  }

  function renderTitle() {
    var total = unread + inboxUnread;
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  }

  /* "just now", "5 min ago", "3 h ago", "2 d ago", else the date; the full time on hover. */
  function relative(iso) {
    var seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 60) { return "just now"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + " min ago"; }
    if (seconds < 86400) { return Math.floor(seconds / 3600) + " h ago"; }
    if (seconds < 7 * 86400) { return Math.floor(seconds / 86400) + " d ago"; }
    return new Date(iso).toLocaleDateString();
  }

  function setTime(time, iso) {
    time.dateTime = iso;
    time.textContent = relative(iso);
    time.title = new Date(iso).toLocaleString();
  }

  function refreshTimes() {
    var times = document.querySelectorAll("time.relative-time");
    for (var i = 0; i < times.length; i++) { setTime(times[i], times[i].dateTime); }
  }

  function setInbox(count) {
    if (!messagesBadge || typeof count !== "number") { return; }
    messagesBadge.textContent = String(count);
    messagesBadge.dataset.count = String(count);
    messagesBadge.hidden = count === 0;
    inboxUnread = count;
    renderTitle();
    refreshConversations();
  }

  /* The rooms dot and the /messages/ list, from the inbox API (one request per burst of frames). */
  var conversationsTimer = null;
  function refreshConversations() {
    if (conversationsTimer) { return; }
    conversationsTimer = setTimeout(function () {
      conversationsTimer = null;
      fetch("/api/conversations/", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) { renderConversations(data.results); } })
        .catch(function () { /* the next inbox frame tries again */ });
    }, 150);
  }

  /* A new message of one of the user's rooms (the bell follows them): its row moves to the top
     with the message, and counts as unread unless it is the user's own or the user is reading
     that room right now. The list is exact again at the next API refresh. */
  function onRoomMessage(message) {
    var entry = (conversations || []).filter(function (e) { return e.id === message.conversation; })[0];
    if (!entry) { refreshConversations(); return; }
    if (entry.last_message && entry.last_message.id >= message.id) { return; }
    var own = String(message.sender && message.sender.id) === document.body.dataset.userId;
    var reading = window.location.pathname === entry.url && document.visibilityState === "visible";
    entry.last_message = message;
    if (!own && !reading) { entry.unread += 1; }
    renderConversations([entry].concat(conversations.filter(function (e) { return e !== entry; })));
  }

  var conversations = null;
  function renderConversations(results) {
    conversations = results;
    if (roomsBadge) {
      roomsBadge.hidden = !results.some(function (entry) { return entry.kind === "room" && entry.unread > 0; });
    }
    if (!conversationList) { return; }
    conversationList.textContent = "";
    results.forEach(function (entry) {
      var li = document.createElement("li");
      li.className = "card conversation" + (entry.unread ? " unread" : "");
      li.dataset.conversationId = String(entry.id);
      li.dataset.kind = entry.kind;
      var link = document.createElement("a");
      link.className = "conversation-title";
      link.href = safeUrl(entry.url) ? entry.url : "#";
      link.textContent = (entry.kind === "room" ? "# " : "") + entry.title;
      li.appendChild(link);
      if (entry.unread) {
        var count = document.createElement("span");
        count.className = "badge conversation-unread";
        count.textContent = String(entry.unread);
        var label = document.createElement("span");
        label.className = "sr-only";
        label.textContent = " unread";
        count.appendChild(label);
        li.appendChild(count);
      }
      if (entry.last_message) {
        var last = document.createElement("p");
        last.className = "meta last-message";
        var body = entry.last_message.deleted ? "message deleted" : entry.last_message.body;
        last.textContent = entry.last_message.sender.username + ": " + (body.length > 120 ? body.slice(0, 119) + "…" : body);
        li.appendChild(last);
      }
      conversationList.appendChild(li);
    });
    if (!results.length) {
      var none = document.createElement("li");
      none.textContent = "No conversations yet.";
      conversationList.appendChild(none);
    }
  }

  /* The /notifications/ page (its first page): new rows on top, read ones lose their mark. */
  function pageAdd(notification) {
    if (!pageList || pageList.dataset.firstPage !== "true" || pageList.querySelector('[data-id="' + notification.id + '"]')) { return; }
    var li = document.createElement("li");
    li.className = "card notification-row" + (notification.read ? "" : " unread");
    li.dataset.id = String(notification.id);
    var text = document.createElement("p");
    text.className = "notification-text";
    var link = document.createElement(safeUrl(notification.url) ? "a" : "span");
    link.textContent = notification.text;
    if (link.tagName === "A") { link.href = notification.url; }
    text.appendChild(link);
    var meta = document.createElement("p");
    meta.className = "meta";
    var time = document.createElement("time");
    time.className = "relative-time";
    setTime(time, notification.created_at);
    meta.appendChild(time);
    li.appendChild(text);
    li.appendChild(meta);
    if (!notification.read) {
      var form = document.createElement("form");
      var mark = document.createElement("button");
      mark.type = "button";
      mark.className = "secondary";
      mark.textContent = "Mark read";
      mark.addEventListener("click", function () { markRead([notification.id], false); });
      form.appendChild(mark);
      li.appendChild(form);
    }
    var empty = pageList.querySelector(".notifications-empty");
    if (empty) { empty.remove(); }
    pageList.prepend(li);
  }

  function pageMarkRead(test) {
    if (!pageList) { return; }
    var rows = pageList.querySelectorAll(".notification-row.unread");
    for (var i = 0; i < rows.length; i++) {
      if (test(Number(rows[i].dataset.id))) {
        rows[i].classList.remove("unread");
        var state = rows[i].querySelector(".notification-state");
        if (state) { state.remove(); }
        var form = rows[i].querySelector("form");
        if (form) { form.remove(); }
      }
    }
  }

  function safeUrl(url) {
    /* A local path ("/x", not "//host" nor "/\\host", which browsers read as "//host") or http(s). */
    return typeof url === "string" && (/^\/(?![\/\\])/.test(url) || /^https?:\/\//i.test(url));
  }

  /* Store a notification; false when it was already known (a replayed or duplicate push). */
  function remember(notification, authoritative) {
    if (!notification || typeof notification.id !== "number") { return false; }
    var known = Object.prototype.hasOwnProperty.call(items, notification.id);
    if (!known || authoritative) { items[notification.id] = notification; }
    if (notification.id > lastId) { lastId = notification.id; }
    return !known;
  }

  function buildItem(notification) {
    var li = document.createElement("li");
    li.className = "notification-item";
    li.dataset.id = String(notification.id);
    var link = document.createElement(safeUrl(notification.url) ? "a" : "span");
    link.className = "notification-link";
    link.textContent = notification.text;
    if (link.tagName === "A") {
      link.href = notification.url;
      link.addEventListener("click", function () {
        if (!items[notification.id].read) { markRead([notification.id], true); }
      });
    }
    var time = document.createElement("time");
    time.className = "notification-time relative-time";
    setTime(time, notification.created_at);
    var mark = document.createElement("button");
    mark.type = "button";
    mark.className = "notification-mark-read link-button";
    mark.textContent = "Mark read";
    mark.setAttribute("aria-label", "Mark read: " + notification.text);
    mark.addEventListener("click", function () {
      markRead([notification.id], false);
      button.focus();
    });
    li.appendChild(link);
    li.appendChild(time);
    li.appendChild(mark);
    return li;
  }

  /* Keyed rendering: existing <li>s are kept, so focus and scroll survive updates. */
  function render() {
    var ids = Object.keys(items).map(Number).sort(function (a, b) { return b - a; }).slice(0, SHOWN);
    var keep = {};
    ids.forEach(function (id, index) {
      keep[id] = true;
      var li = nodes[id] || (nodes[id] = buildItem(items[id]));
      var isUnread = !items[id].read;
      li.classList.toggle("unread", isUnread);
      li.querySelector(".notification-mark-read").hidden = !isUnread;
      if (list.children[index] !== li) { list.insertBefore(li, list.children[index] || null); }
    });
    Object.keys(nodes).forEach(function (id) {
      if (!keep[id]) {
        if (nodes[id].parentNode) { nodes[id].parentNode.removeChild(nodes[id]); }
        delete nodes[id];
      }
    });
    empty.hidden = ids.length > 0;
  }

  function markLocally(test) {
    Object.keys(items).forEach(function (id) {
      if (test(Number(id))) { items[id].read = true; }
    });
    pageMarkRead(test);
    render();
  }

  function postRead(body, keepalive) {
    return fetch(root.dataset.readUrl, {
      method: "POST",
      credentials: "same-origin",
      keepalive: keepalive,
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrfToken },
      body: JSON.stringify(body)
    }).then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { setUnread(data.unread); } })
      .catch(function () { /* the socket's next unread frame or resume corrects the badge */ });
  }

  function markRead(ids, navigating) {
    var newlyRead = ids.filter(function (id) { return items[id] && !items[id].read; }).length;
    markLocally(function (id) { return ids.indexOf(id) !== -1; });
    setUnread(Math.max(0, unread - newlyRead));
    // A click on a link leaves the page: only a keepalive fetch survives that.
    if (navigating || !socket.send({ type: "mark_read", ids: ids })) { postRead({ ids: ids }, navigating); }
  }

  function markAll() {
    markLocally(function () { return true; });
    setUnread(0);
    if (!socket.send({ type: "mark_all_read" })) { postRead({ all: true }, false); }
  }

  function load() {
    fetch(root.dataset.apiUrl + "?limit=10", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        data.results.forEach(function (notification) { remember(notification, true); });
        setUnread(data.unread);
        render();
      })
      .catch(function () { /* live frames still fill the list */ });
  }

  function isOpen() {
    return !dropdown.hidden;
  }

  function open() {
    dropdown.hidden = false;
    button.setAttribute("aria-expanded", "true");
    load();
  }

  function close(returnFocus) {
    if (!isOpen()) { return; }
    dropdown.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (returnFocus) { button.focus(); }
  }

  /* A grouped notification supersedes these ids: they leave the list and the page. */
  function forget(ids) {
    if (!Array.isArray(ids)) { return; }
    ids.forEach(function (id) {
      delete items[id];
      if (nodes[id]) {
        if (nodes[id].parentNode) { nodes[id].parentNode.removeChild(nodes[id]); }
        delete nodes[id];
      }
      var row = pageList && pageList.querySelector('.notification-row[data-id="' + Number(id) + '"]');
      if (row) { row.remove(); }
    });
  }

  function desktop(title, body, tag, url) {
    if (!replaying && window.DesktopNotify) { window.DesktopNotify.show(title, body, tag, safeUrl(url) ? url : null); }
  }

  function onFrame(frame) {
    if (frame.type === "notification") {
      var notification = frame.notification;
      forget(notification && notification.replaces);
      var isNew = remember(notification, false);
      if (isNew) {
        pageAdd(notification);
        desktop("Social", notification.text, "notification-" + notification.id, notification.url);
      }
      setUnread(frame.unread, isNew ? notification.text : null);
      render();
    } else if (frame.type === "unread") {
      if (Array.isArray(frame.ids)) { markLocally(function (id) { return frame.ids.indexOf(id) !== -1; }); }
      if (typeof frame.up_to === "number") { markLocally(function (id) { return id <= frame.up_to; }); }
      if (frame.unread === 0) { markLocally(function () { return true; }); }
      setUnread(frame.unread);
    } else if (frame.type === "ready") {
      replaying = false;
      setUnread(frame.unread);
      setInbox(frame.inbox_unread);
    } else if (frame.type === "inbox") {
      // Only a message that raised the total is news (a muted conversation's does not).
      var message = frame.message;
      if (message && message.sender && typeof frame.unread === "number" && frame.unread > inboxUnread) {
        var peer = message.sender.username;
        desktop("Message from " + peer, message.body, "message-" + message.id, "/messages/" + encodeURIComponent(peer) + "/");
      }
      setInbox(frame.unread);
    } else if (frame.type === "message") {
      onRoomMessage(frame.message);
    }
  }

  button.addEventListener("click", function () {
    if (isOpen()) { close(false); } else { open(); }
  });
  markAllButton.addEventListener("click", markAll);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isOpen()) {
      event.preventDefault();
      close(true);
    }
  });

  function focusables() {
    return Array.prototype.filter.call(dropdown.querySelectorAll("a, button"), function (el) {
      return !el.hidden && el.offsetParent !== null;
    });
  }

  root.addEventListener("keydown", function (event) {
    if (!isOpen()) {
      if (event.target === button && event.key === "ArrowDown") { event.preventDefault(); open(); focusables()[0].focus(); }
      return;
    }
    var all = focusables();
    var index = all.indexOf(document.activeElement);
    var next = null;
    if (event.key === "ArrowDown") { next = all[index < 0 ? 0 : Math.min(all.length - 1, index + 1)]; }
    else if (event.key === "ArrowUp") { next = all[index <= 0 ? 0 : index - 1]; }
    else if (event.key === "Home") { next = all[0]; }
    else if (event.key === "End") { next = all[all.length - 1]; }
    if (next) { event.preventDefault(); next.focus(); }
  });

  root.addEventListener("focusout", function (event) {
    if (isOpen() && event.relatedTarget && !root.contains(event.relatedTarget)) { close(false); }
  });

  refreshTimes();
  setInterval(refreshTimes, 30000);
  document.addEventListener("click", function (event) {
    if (isOpen() && !root.contains(event.target)) { close(false); }
  });

  render();
  var socket = new window.RealtimeSocket(root.dataset.socketPath, {
    onFrame: onFrame,
    onOpen: function () { replaying = true; },
    onStatus: function (state, code) { window.RealtimeSocket.showStatus("notifications", state, code); },
    getAfter: function () { return String(lastId); }
  });
})();
