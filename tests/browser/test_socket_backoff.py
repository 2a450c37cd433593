"""static/js/socket.js backs off from a server that accepts sockets and then fails them."""

from __future__ import annotations

from pathlib import Path

from tests.browser.conftest import BROWSER_TESTS

pytestmark = BROWSER_TESTS
SOCKET_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "socket.js"

# A WebSocket that opens, optionally sends the server's ready, then closes with 1011;
# timers run at once but their delays are kept, and the jitter is pinned at its top.
FAKE_SERVER = """
window.delays = [];
const realSetTimeout = window.setTimeout.bind(window);
window.setTimeout = (fn, ms) => { window.delays.push(ms); return realSetTimeout(fn, 0); };
Math.random = () => 1;
window.FakeWebSocket = class {
  constructor(url) {
    this.readyState = 0;
    realSetTimeout(() => {
      this.readyState = 1;
      this.onopen();
      if (window.sendReady) { this.onmessage({data: JSON.stringify({type: "ready"})}); }
      this.readyState = 3;
      this.onclose({code: 1011});
    }, 0);
  }
  send() {}
  close() {}
};
window.FakeWebSocket.OPEN = 1;
window.WebSocket = window.FakeWebSocket;
"""


async def reconnect_delays(browser, *, ready: bool) -> list[float]:
    page = await browser.new_page()
    try:
        await page.set_content("<!doctype html><title>socket.js</title>")
        await page.evaluate(FAKE_SERVER + f"\nwindow.sendReady = {'true' if ready else 'false'};")
        await page.add_script_tag(content=SOCKET_JS.read_text())
        await page.evaluate("window.socket = new RealtimeSocket('/ws/notifications/', {})")
        await page.wait_for_function("window.delays.length >= 6")
        await page.evaluate("window.socket.stop()")
        return (await page.evaluate("window.delays"))[:6]
    finally:
        await page.close()


async def test_a_socket_that_opens_but_never_gets_ready_backs_off_further_each_time(browser):
    assert await reconnect_delays(browser, ready=False) == [750, 1250, 2250, 4250, 8250, 16250]


async def test_a_socket_that_got_ready_starts_its_back_off_over(browser):
    assert await reconnect_delays(browser, ready=True) == [750] * 6
