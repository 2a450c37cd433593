/*
 * layout.js: keeps --viewport-height on <html> equal to the visual viewport's
 * height, so a chat page (body.chat-page, chat.css) shrinks above an on-screen
 * keyboard and its composer stays visible.
 */
(function () {
  "use strict";

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
