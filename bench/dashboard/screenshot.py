#!/usr/bin/env python3
"""A screenshot of a page served on localhost, for the README: Debian's chromium driven over
WebDriver (chromedriver), a script run first (e.g. scrolling to a section).

    bench/dashboard/screenshot.py URL OUT.png WIDTH HEIGHT SCRIPT

The README's dashboard pictures: `bench/dashboard/records.py --demo > demo.jsonl`, then
`snoopy-dashboard demo.jsonl --listen 127.0.0.1:18555` and this script."""
import base64
import json
import subprocess
import sys
import time
import urllib.request

url, out, width, height, script = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
drv = subprocess.Popen(["chromedriver", "--port=19515"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
def call(method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:19515" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["value"]
try:
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--window-size={width},{height}", "--hide-scrollbars"]
    s = call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}})["sessionId"]
    call("POST", f"/session/{s}/url", {"url": url})
    time.sleep(2)
    call("POST", f"/session/{s}/execute/sync", {"script": script, "args": []})
    time.sleep(0.5)
    png = call("GET", f"/session/{s}/screenshot")
    open(out, "wb").write(base64.b64decode(png))
    call("DELETE", f"/session/{s}")
finally:
    drv.terminate()
