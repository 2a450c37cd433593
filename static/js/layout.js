/*
 * layout.js: keeps --viewport-height on <html> equal to the visual viewport's
 * height, so a chat page (body.chat-page, chat.css) shrinks above an on-screen
 * keyboard and its composer stays visible. On a phone a room's people panel
 * (#room-side) starts folded, so the conversation gets the screen.
 */
(function () {
  "use strict";

  var side = document.getElementById("room-side");
  if (side && window.matchMedia("(max-width: 40rem)").matches) { side.open = false; }

  var viewport = window.visualViewport;
  if (!viewport) { return; }

  function update() {
    document.documentElement.style.setProperty("--viewport-height", viewport.height + "px");
    if (viewport.offsetTop) { window.scrollTo(0, 0); }
  }

  viewport.addEventListener("resize", update);
  viewport.addEventListener("scroll", update);
  update();
})();
