#!/usr/bin/env python3
"""Records benchmark: imports, exports and an online backup against a running Dropgate.

1. Import of N (default 100 000) legacy sale records (the old script's `.php` file, one
   transaction): dry run and real run, rows per second, and the server's peak memory.
2. Download events: wrk downloads a 1 KiB file until M (default 1 000 000) events are in
   the log. Then the events export (CSV, streamed): rows per second, MB/s and the server's
   memory growth while it streams; nginx serving the same CSV as a static file in the same
   run is the floor (ratio printed). The orders export (N rows) likewise.
3. A backup while downloads go on: one keep-alive client downloads the 1 KiB file in a
   loop; the longest time a download took during the backup, next to the p99 before it.

Usage: python3 bench/records.py [--binary target/dropgate] [--rows 100000] [--events 1000000]
(`cargo xtask bench` runs it.)
"""

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from downloads import api, ensure_tool, start_dropgate, start_nginx, status_kib, upload  # noqa: E402
from startup import ensure_nginx, free_port  # noqa: E402


class PeakRss:
    """Samples a process's resident memory every 20 ms while in a `with` block."""

    def __init__(self, pid):
        self.pid, self.peak, self.start, self._stop = pid, 0, 0, threading.Event()

    def __enter__(self):
        self.start = self.peak = status_kib(self.pid, "VmRSS")
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            time.sleep(0.02)

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def legacy_file(rows):
    lines = ["<?php exit; ?>"]
    for i in range(rows):
        day = 1 + i % 28
        lines.append(f"202401{day:02d}{i:016X}|book|buyer{i}@example.com|TX{i:012d}|Buyer {i}")
    return ("\n".join(lines) + "\n").encode()


def post_file(port, token, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        sys.exit(f"{path}: {response.status} {data[:500]!r}")
    return time.perf_counter() - started


def download_to(port, path, token, out):
    """GETs `path` into the file `out`; returns (seconds, bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = conn.getresponse()
    if response.status != 200:
        sys.exit(f"{path}: {response.status} {response.read()[:300]!r}")
    total = 0
    with open(out, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
            total += len(chunk)
    return time.perf_counter() - started, total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dropgate"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo xtask build` first")
    ensure_tool("wrk", "wrk")
    nginx = ensure_nginx()
    work = tempfile.mkdtemp(prefix="dropgate-records-bench-")
    data = os.path.join(work, "data")
    port, nginx_port = free_port(), free_port()
    dropgate, token = start_dropgate(args.binary, data, port)
    base = f"http://127.0.0.1:{port}"
    nginx_proc = None
    try:
        api(base, token, "POST", "/api/v1/products",
            {"product_id": "book", "name": "Book", "max_downloads": 0, "download_days": 0})
        small = os.path.join(work, "small.bin")
        with open(small, "wb") as f:
            f.write(os.urandom(1024))
        file_id = upload(base, token, "book", "small.bin", small)["file_id"]

        # 1. Import.
        body = legacy_file(args.rows)
        dry = post_file(port, token, "/api/v1/imports?dry_run=true", body)
        with PeakRss(dropgate.pid) as rss:
            real = post_file(port, token, "/api/v1/imports", body)
        print(f"import of {args.rows} legacy rows ({len(body) / 1e6:.1f} MB): dry run {dry:.2f} s "
              f"({args.rows / dry:.0f} rows/s), real run {real:.2f} s ({args.rows / real:.0f} rows/s, "
              f"one transaction); server memory {rss.start / 1024:.0f} -> peak {rss.peak / 1024:.0f} MiB")
        again = post_file(port, token, "/api/v1/imports", body)
        print(f"the same file again: {again:.2f} s, nothing created")

        # 2. Events, then the exports.
        created = api(base, token, "POST", "/api/v1/orders",
                      {"email": "load@example.com", "name": "Load", "product_ids": ["book"]})
        url = f"{base}/d/{created['issued'][0]['password']}/{file_id}"
        events = 0
        while events < args.events:
            out = subprocess.run(["wrk", "-t2", "-c32", "-d10s", url], capture_output=True, text=True, check=True).stdout
            events += int(out.split(" requests in")[0].split()[-1])
        nginx_root = os.path.join(work, "nginx")
        os.makedirs(os.path.join(nginx_root, "files"))
        rates = {}
        for kind, expected in (("events", events), ("orders", args.rows + 1)):
            out = os.path.join(nginx_root, "files", f"{kind}.csv")
            with PeakRss(dropgate.pid) as rss:
                seconds, size = download_to(port, f"/api/v1/exports/{kind}.csv", token, out)
            with open(out, "rb") as f:
                rows = sum(1 for _ in f) - 1
            if rows < expected:
                sys.exit(f"the {kind} export has {rows} rows, expected at least {expected}")
            print(f"export of {rows} {kind}: {seconds:.2f} s, {rows / seconds:.0f} rows/s, "
                  f"{size / seconds / 1e6:.1f} MB/s; server memory {rss.start / 1024:.0f} -> peak "
                  f"{rss.peak / 1024:.0f} MiB while streaming {size / 1e6:.0f} MB")
            rates[kind] = size / seconds
        with open(os.path.join(nginx_root, "files", "small.bin"), "wb") as f:
            f.write(b"x")  # start_nginx waits for this file to be served
        for path in (work, nginx_root, os.path.join(nginx_root, "files")):
            os.chmod(path, 0o755)  # nginx's workers run as another user
        for name in os.listdir(os.path.join(nginx_root, "files")):
            os.chmod(os.path.join(nginx_root, "files", name), 0o644)
        nginx_proc = start_nginx(nginx, nginx_root, nginx_port)
        for kind in ("events", "orders"):
            rate = rates[kind]
            seconds, size = download_to(nginx_port, f"/plain/{kind}.csv", None, os.devnull)
            print(f"nginx serving the same {kind} CSV from disk: {size / seconds / 1e6:.0f} MB/s; "
                  f"dropgate export/nginx {rate / (size / seconds):.2f}x (dropgate reads, joins and "
                  f"writes every row)")

        # 3. A backup while downloads go on.
        latencies, during, stop = [], [], threading.Event()
        backing_up = threading.Event()
        path = url[len(base):]

        def downloader():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while not stop.is_set():
                started = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                took = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    sys.exit(f"a download during the backup answered {response.status}")
                (during if backing_up.is_set() else latencies).append(took)

        thread = threading.Thread(target=downloader)
        thread.start()
        time.sleep(3)
        backing_up.set()
        seconds, size = download_to(port, "/api/v1/backup", token, os.path.join(work, "backup.redb"))
        backing_up.clear()
        time.sleep(1)
        stop.set()
        thread.join()
        before = sorted(latencies)
        p99 = before[int(len(before) * 0.99)]
        print(f"backup of {size / 1e6:.0f} MB in {seconds:.2f} s while a client downloaded: "
              f"{len(during)} downloads during it, the longest {max(during):.1f} ms "
              f"(median {statistics.median(during):.2f} ms; before it p99 {p99:.2f} ms)")
    finally:
        dropgate.terminate()
        dropgate.wait()
        if nginx_proc:
            nginx_proc.terminate()
            nginx_proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
