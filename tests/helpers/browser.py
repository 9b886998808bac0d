"""Headless Chromium (Debian's `chromium`) driven over the Chrome DevTools protocol: load a page,
wait until its text says what a person must read there, and record every request it made.

No browser download, no driver binary: the protocol is a websocket (the `websockets` package,
which Prefect already needs). `BROWSER` is None when no Chromium is installed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.helpers.wait import wait_until

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@dataclass
class Page:
    """One tab: `open(url)`, then `text()`; `requests` holds every URL the page asked for."""

    socket: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught script errors
    console: list[str] = field(default_factory=list)  # console errors (a failed load included)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            self.errors.append(str(params["exceptionDetails"].get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console.append(" ".join(str(a.get("value", "")) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.console.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able)."""
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def links(self) -> list[str]:
        """Where the page's links go (resolved URLs)."""
        return list(self.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"))

    def broken_images(self) -> list[str]:
        return list(
            self.evaluate(
                "[...document.images].filter(i => !i.complete || !i.naturalWidth).map(i => i.src)"
            )
        )

    def wait_for(self, *needles: str, timeout_s: float = 300.0) -> str:
        """The page's text once it holds every one of `needles` (a single-page app renders
        after loading)."""
        seen = [""]

        def showing() -> str | None:
            seen[0] = self.text()
            return seen[0] if all(needle in seen[0] for needle in needles) else None

        try:
            return wait_until(showing, f"page never showed {needles!r}", timeout_s, 0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}; it showed:\n{seen[0][:3000]}") from None

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def outside_requests(self) -> list[str]:
        """Requests that would leave the machine (anything but this host, data: and blob:)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname not in LOCAL_HOSTS
        ]


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Page]:
    """A headless Chromium with one tab, closed afterwards."""
    from websockets.sync.client import connect

    assert BROWSER is not None
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                BROWSER,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--window-size={width},{height}",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            active = Path(profile) / "DevToolsActivePort"
            wait_until(
                lambda: active.is_file() and len(active.read_text().split()) >= 2,
                "chromium did not open its debugging port",
                60,
                alive=lambda: process.poll() is None,
            )
            port = active.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
                tabs = json.load(answer)
            target = next(t for t in tabs if t.get("type") == "page")
            with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
                page = Page(socket)
                page.call("Network.enable")
                page.call("Runtime.enable")
                page.call("Page.enable")
                page.call("Log.enable")
                yield page
        finally:
            process.terminate()
            process.wait(timeout=30)
