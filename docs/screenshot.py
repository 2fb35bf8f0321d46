"""Screenshot a running explorer with headless Chromium (how docs/explorer.png was taken).

    python -m analysis.explore results/profiles/demo-tiny-xlmr results/profiles/demo-english \\
        results/analysis/demo-correlate results/analysis/demo-recall --port 8612 &
    python docs/screenshot.py 'http://localhost:8612/?view=Profiles&run=demo-tiny-xlmr&compare=demo-english&language=en&language=fr&language=de&category=religion&group=buddhists' docs/explorer.png

``chromium --headless --screenshot`` alone captures Streamlit's loading skeleton: the page is drawn
over a websocket, which ``--virtual-time-budget`` does not wait for. This opens the page through
Chromium's DevTools protocol instead, waits ``--wait`` seconds of real time, then captures it.
Needs the ``chromium`` Debian package (``apt-get install chromium``) and ``websockets`` (a
Streamlit dependency).
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect


def capture(url: str, out: Path, *, wait: float, width: int, height: int, port: int) -> None:
    browser = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                f"--remote-debugging-port={port}", f"--window-size={width},{height}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = None
        for _ in range(100):  # the DevTools endpoint comes up within seconds
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
                    page = next(t for t in json.load(response) if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.2)
        if page is None:
            raise SystemExit(f"chromium's DevTools endpoint on port {port} did not answer")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as socket:
            calls = 0

            def call(method: str, **params):
                nonlocal calls
                calls += 1
                socket.send(json.dumps({"id": calls, "method": method, "params": params}))
                while True:
                    reply = json.loads(socket.recv())
                    if reply.get("id") == calls:
                        return reply.get("result", {})

            call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
            call("Page.navigate", url=url)
            time.sleep(wait)
            out.write_bytes(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
    finally:
        browser.terminate()
        browser.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--wait", type=float, default=15, help="seconds to let the page render (default: 15)")
    parser.add_argument("--size", default="1400x1000", help="window width x height (default: 1400x1000)")
    parser.add_argument("--port", type=int, default=9333, help="Chromium's DevTools port (default: 9333)")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    capture(args.url, args.out, wait=args.wait, width=width, height=height, port=args.port)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
