"""A small Chrome DevTools Protocol client for the browser tests.

Headless Chromium is started with --remote-debugging-port=0; it prints the browser's DevTools
websocket URL on stderr ("DevTools listening on ws://..."). We connect to that one websocket
(websocket-client, synchronous), open a tab with Target.createTarget and attach to it with
flatten=True, so every page command goes over the same socket with a sessionId. Every call has
a deadline, so a hung browser fails a test instead of stalling CI, and the browser runs in its
own process group, which `Browser.close` kills as a whole.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from pathlib import Path

CALL_TIMEOUT = 20.0
LAUNCH_TIMEOUT = 30.0
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class CDPError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """LSTMCTL_CHROMIUM if set, else the first Chromium on PATH."""
    explicit = os.environ.get("LSTMCTL_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process and one CDP websocket to it."""

    def __init__(self, executable: str, timeout: float = CALL_TIMEOUT):
        import websocket  # websocket-client, the `browser` extra

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="lstmctl-chromium-")
        self.stderr_lines: list[str] = []
        args = [
            executable,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: close() kills the renderers too
        )
        found = threading.Event()
        self._ws_url = None

        def drain():  # keep reading stderr so the pipe never fills up
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                self.stderr_lines.append(line)
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m and not found.is_set():
                    self._ws_url = m.group(1)
                    found.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                found.wait(1)  # the drain thread may still be reading its last lines
                break
        if not self._ws_url:
            self.close()
            tail = "\n".join(self.stderr_lines[-20:])
            raise CDPError(f"Chromium (exit code {self.proc.returncode}) gave no DevTools URL within "
                           f"{LAUNCH_TIMEOUT:.0f} s:\n{tail}")
        try:
            # suppress_origin: Chromium refuses websocket clients that send an Origin header
            # unless started with --remote-allow-origins.
            self.ws = websocket.create_connection(self._ws_url, timeout=timeout, suppress_origin=True)
        except Exception:
            self.close()
            raise
        self._next_id = 0
        self.events: list[dict] = []

    # -- the wire ---------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._recv(deadline, f"{method} (no reply)")
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def _recv(self, deadline: float, what: str) -> dict:
        import websocket

        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"CDP: timed out waiting for {what}")
        self.ws.settimeout(left)
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"CDP: timed out waiting for {what}") from None

    def wait_event(self, method: str, session: str | None = None, since: int = 0,
                   timeout: float | None = None) -> dict:
        """The first event `method` (of `session`) at or after index `since` of self.events."""
        deadline = time.monotonic() + (timeout or self.timeout)
        checked = since
        while True:
            for ev in self.events[checked:]:
                if ev["method"] == method and (session is None or ev.get("sessionId") == session):
                    return ev
            checked = max(checked, len(self.events))
            msg = self._recv(deadline, f"event {method}")
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds: float = 0.2) -> None:
        """Read whatever events arrive in the next `seconds`."""
        import websocket

        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                return
            if "method" in msg:
                self.events.append(msg)

    # -- pages ------------------------------------------------------------------------------

    def new_page(self, width: int = 1280, height: int = 900) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:
                pass
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # renderers left in the group after the browser itself exited
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._drain.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, browser: Browser, target: str, session: str):
        self.browser = browser
        self.target = target
        self.session = session
        self.url: str | None = None
        self.opened: set[str] = set()  # every page navigated to: their own loads are no finding
        self.start = len(browser.events)

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str) -> None:
        since = len(self.browser.events)
        self.url = url
        self.opened.add(url.split("#", 1)[0])
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigating to {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", session=self.session, since=since)
        self.browser.pump(0.3)  # late console messages and requests after load

    def evaluate(self, expression: str):
        """The value of a JS expression (awaited if it is a promise); page exceptions raise."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"evaluate {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 3.0, interval: float = 0.05):
        """Poll a JS expression until it is truthy; returns its last value (falsy on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            self.browser.pump(interval)

    def mouse(self, kind: str, x: float, y: float, **extra) -> None:
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra})

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, button="left", buttons=1, clickCount=1)
        self.mouse("mouseReleased", x, y, button="left", buttons=0, clickCount=1)

    def screenshot(self, full_page: bool = False) -> bytes:
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        return base64.b64decode(self.send("Page.captureScreenshot", params, timeout=60)["data"])

    def events(self) -> list[dict]:
        return [e for e in self.browser.events[self.start:] if e.get("sessionId") == self.session]

    def problems(self, allowed_data_prefixes: tuple[str, ...] = ()) -> list[str]:
        """Console errors, uncaught exceptions, error log entries, and any request but the page."""
        self.browser.pump(0.2)
        found = []
        for ev in self.events():
            method, p = ev["method"], ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                found.append(f"console.{p['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                found.append(f"uncaught exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                found.append(f"log error ({e.get('source')}): {e.get('text')} {e.get('url', '')}".rstrip())
            elif method == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if url.split("#", 1)[0] in self.opened:
                    continue
                if url.startswith("data:") and url.startswith(allowed_data_prefixes):
                    continue
                found.append(f"network request: {url[:200]}")
            elif method == "Network.webSocketCreated":
                found.append(f"websocket opened: {p.get('url')}")
        return found

    def close(self) -> None:
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target}, timeout=5)
        except Exception:
            pass


def png_facts(data: bytes) -> dict:
    """Width, height and a count of distinct scanlines of a PNG, read with zlib alone.

    The scanlines are compared as stored (filter byte + filtered bytes): a picture of one colour
    has at most a few distinct ones whatever filters the encoder chose, a real page hundreds.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(b"".join(idat))
    row = 1 + (width * channels * depth + 7) // 8
    rows = {raw[i:i + row] for i in range(0, len(raw), row)} if not interlace else {raw}
    return {"width": width, "height": height, "bytes": len(data),
            "complete": interlace or len(raw) == row * height, "distinct_rows": len(rows)}


def file_url(path: Path) -> str:
    return Path(path).resolve().as_uri()
