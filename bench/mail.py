#!/usr/bin/env python3
"""Mail benchmark: how fast Dropgate's outbox worker sends, against a local SMTP server.

1. Throughput: orders are created while no SMTP server is configured (their mails wait in
   the outbox, as in the embedded default), then Dropgate is restarted with SMTP and the
   worker drains the backlog. Mails per second = mails / (last accepted - first accepted).
   Every mail goes through the whole path: claimed ("sending", committed), sent over SMTP,
   settled ("sent" with the server's reply, committed).
2. Latency: with SMTP running and the worker idle, orders are created one at a time; the
   delay is from the moment the order request was sent (the order and its mails commit
   inside it) to the moment the SMTP server accepted the buyer's mail: an upper bound on
   "confirmed -> accepted". Median, 95th percentile, worst.

The SMTP server is aiosmtpd in this process on 127.0.0.1, answering 250 at once and
recording the time and recipient of each message (so it is not the bottleneck being
measured; it runs on the same 2 cores as Dropgate).

Usage: python3 bench/mail.py [--binary target/dropgate] [--backlog 500] [--samples 50]
(`cargo xtask bench` runs it.) Installs aiosmtpd from PyPI when missing.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from downloads import api  # noqa: E402
from startup import free_port, wait_ok  # noqa: E402


def ensure_aiosmtpd():
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "--break-system-packages", "aiosmtpd==1.4.6"], check=True)


class Recorder:
    """An SMTP handler that accepts everything and notes when each message arrived."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals = []  # (time, recipient)

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.append((now, rcpt))
        return "250 2.0.0 accepted"

    def snapshot(self):
        with self.lock:
            return list(self.arrivals)


def start_dropgate(binary, data, port, smtp_port=None):
    args = [binary, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}"]
    if smtp_port:
        args += ["--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_port),
                 "--smtp-security", "none", "--smtp-from", "Bench Shop <shop@example.com>"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ok(f"http://127.0.0.1:{port}/healthz")
    return proc


def wait_for(recorder, recipients, deadline_s):
    """Waits until every address in `recipients` has been mailed."""
    start = time.time()
    while True:
        got = {rcpt for _, rcpt in recorder.snapshot()}
        missing = recipients - got
        if not missing:
            return
        if time.time() - start > deadline_s:
            sys.exit(f"{len(missing)} of {len(recipients)} recipients got no mail within {deadline_s} s")
        time.sleep(0.005)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dropgate"))
    parser.add_argument("--backlog", type=int, default=500, help="orders queued before SMTP comes up")
    parser.add_argument("--samples", type=int, default=50, help="orders timed one by one")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo xtask build` first")
    ensure_aiosmtpd()
    from aiosmtpd.controller import Controller

    work = tempfile.mkdtemp(prefix="dropgate-mail-bench-")
    data = os.path.join(work, "data")
    token = subprocess.run([args.binary, "token", "create", "--data-dir", data, "--name", "bench"],
                           capture_output=True, text=True, check=True).stdout.strip()
    recorder = Recorder()
    smtp_port, port = free_port(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    base = f"http://127.0.0.1:{port}"
    dropgate = start_dropgate(args.binary, data, port)
    try:
        api(base, token, "POST", "/api/v1/products",
            {"product_id": "book", "name": "Book", "max_downloads": 3, "download_days": 31})
        api(base, token, "PUT", "/api/v1/products/book/files/book.pdf", data=b"x" * 1000)

        # 1. A backlog, then the worker drains it.
        for n in range(args.backlog):
            api(base, token, "POST", "/api/v1/orders",
                {"email": f"backlog{n}@example.com", "product_ids": ["book"]})
        dropgate.terminate()
        dropgate.wait()
        # Without SMTP and without a sender address in Settings there is no seller notice
        # to queue, so the backlog is the buyers' mails.
        dropgate = start_dropgate(args.binary, data, port, smtp_port)
        wait_for(recorder, {f"backlog{n}@example.com" for n in range(args.backlog)}, deadline_s=600)
        times = [t for t, _ in recorder.snapshot()]
        mails = len(times)
        span = max(times) - min(times)
        rate = (mails - 1) / span if span > 0 else float("inf")
        print(f"outbox backlog of {mails} mails drained in {span:.2f} s: {rate:.0f} mails/s "
              f"(claim + SMTP + settle, each step committed)")

        # 2. One order at a time with the worker idle.
        delays = []
        for n in range(args.samples):
            email = f"timed{n}@example.com"
            # From the request, so the figure is an upper bound: the order commits (with its
            # mail) inside it, and the worker is woken by that commit.
            sent = time.time()
            api(base, token, "POST", "/api/v1/orders", {"email": email, "product_ids": ["book"]})
            wait_for(recorder, {email}, deadline_s=30)
            arrived = next(t for t, rcpt in recorder.snapshot() if rcpt == email)
            delays.append((arrived - sent) * 1000)
            time.sleep(0.05)
        delays.sort()
        p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
        print(f"order request sent -> buyer's mail accepted ({args.samples} orders): "
              f"median {statistics.median(delays):.1f} ms, p95 {p95:.1f} ms, worst {delays[-1]:.1f} ms")
    finally:
        dropgate.terminate()
        dropgate.wait()
        controller.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
