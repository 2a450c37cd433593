/*
 * Desktop notifications (the Notification API) while the tab is hidden.
 *
 * Permission is asked only when the user presses a button.desktop-enable (the
 * bell's #bell-desktop, the settings page's #desktop-enable), never on page
 * load. #desktop-state (settings page) says whether they are on, off, blocked
 * or unsupported. bell.js calls DesktopNotify.show() for live notifications and
 * direct messages; it shows nothing while the tab is visible or without
 * permission. A tag per item keeps several hidden tabs from showing it twice.
 */
(function () {
  "use strict";

  var supported = "Notification" in window;

  function permission() {
    return supported ? window.Notification.permission : "unsupported";
  }

  function show(title, body, tag, url) {
    if (!supported || window.Notification.permission !== "granted" || !document.hidden) { return null; }
    try {
      var shown = new window.Notification(title, { body: body, tag: tag });
      shown.onclick = function () {
        window.focus();
        if (url) { window.location.href = url; }
        shown.close();
      };
      return shown;
    } catch (error) {
      return null;  // e.g. a browser that allows notifications only from a service worker
    }
  }

  var STATES = {
    granted: "Desktop notifications are on for this browser.",
    denied: "Desktop notifications are blocked for this site in your browser's settings.",
    "default": "Desktop notifications are off.",
    unsupported: "This browser cannot show desktop notifications."
  };

  function update() {
    var state = permission();
    var buttons = document.querySelectorAll(".desktop-enable");
    for (var i = 0; i < buttons.length; i++) { buttons[i].hidden = state !== "default"; }
    var text = document.getElementById("desktop-state");
    if (text) { text.textContent = STATES[state] || ""; }
  }

  function ask() {
    if (!supported) { return; }
    var asked = window.Notification.requestPermission(update);
    if (asked && typeof asked.then === "function") { asked.then(update); }
  }

  function wire() {
    var buttons = document.querySelectorAll(".desktop-enable");
    for (var i = 0; i < buttons.length; i++) { buttons[i].addEventListener("click", ask); }
    update();
  }

  window.DesktopNotify = { show: show, permission: permission };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
