#!/usr/bin/env python3
"""Renders `trailkeeper report -o html` in headless Chromium and checks what a reader sees: the
matrix's PASS (green) and FAIL (red) cells in the upper half of a 1400x1000 screenshot, and no
request from the page (every request that would leave the machine goes to a recording proxy; only
Chromium's own background requests, made for a blank page too, are allowed).

usage: report-screenshot.py REPORT.html SCREENSHOT.png   (CHROMIUM names the browser)"""
import os, socket, struct, subprocess, sys, tempfile, threading, zlib

PASS, FAIL = (0xDA, 0xFB, 0xE1), (0xFF, 0xEB, 0xE9)
CHROMIUMS_OWN = {"clients2.google.com", "update.googleapis.com", "accounts.google.com"}


def record_requests():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    seen = []

    def accept():
        while True:
            conn, _ = server.accept()
            conn.settimeout(2)
            try:
                seen.append(conn.recv(512).split(b"\r\n")[0].decode("latin-1"))
            except OSError as e:
                seen.append(f"unreadable request: {e}")
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1], seen


def host_of(request_line):
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else ""
    for scheme in ("http://", "https://"):
        target = target.removeprefix(scheme)
    return target.split("/")[0].split(":")[0]


def pixels(png):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, data, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 4 if color == 6 else 3
    raw, stride = zlib.decompress(data), width * channels
    rows, previous, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, up_left = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[x] = (line[x] + pred) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def main(html, screenshot):
    chromium = os.environ.get("CHROMIUM", "chromium")
    port, requests = record_requests()
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps", "--window-size=1400,1000",
             f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>",
             f"--user-data-dir={profile}", f"--screenshot={screenshot}",
             "file://" + os.path.abspath(html)],
            capture_output=True, text=True, timeout=120)
    if not os.path.exists(screenshot):
        sys.exit(f"report-screenshot: no screenshot: {run.stderr[-2000:]}")
    _, height, rows = pixels(open(screenshot, "rb").read())
    top = rows[: height // 2]
    green = sum(row.count(PASS) for row in top)
    red = sum(row.count(FAIL) for row in top)
    page = [r for r in requests if host_of(r) not in CHROMIUMS_OWN]
    print(f"report-screenshot: {screenshot}: {green} PASS and {red} FAIL pixels in the upper half; "
          f"requests from the page: {len(page)}")
    problems = []
    if green < 2000:
        problems.append("the matrix's PASS cells do not show")
    if red < 2000:
        problems.append("the matrix's FAIL cells do not show")
    if page:
        problems.append(f"the page reached for the network: {page}")
    if problems:
        sys.exit("report-screenshot: " + "; ".join(problems))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
