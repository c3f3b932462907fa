#!/usr/bin/env python3
"""Payment notification benchmark: a burst of paid notifications against Dropgate.

1. A burst of N (default 1000) valid, signed Stripe `checkout.session.completed`
   notifications (products named in the metadata, so no API call), sent by 32 concurrent
   keep-alive clients. Each one is timed from the request to the acknowledged answer:
   Dropgate answers after the notification, its deduplication key, the order, its grants
   and its mails are committed in one durable transaction. p50, p99, worst, and the rate.
2. The same N again (a provider redelivering everything): every answer must say
   `duplicate`.
3. Checks: every payment has exactly one order (looked up by transaction ID through the
   API), and the SMTP server (aiosmtpd, in this process) received every buyer's mail.

For scale, nginx answers the same burst of POSTs with a static `return 200` in the same
run (no verification, no storage): the floor of HTTP on this machine, printed as a ratio.

Usage: python3 bench/payments.py [--binary target/dropgate] [--count 1000] [--clients 32]
(`cargo xtask bench` runs it.)
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from downloads import api, start_nginx  # noqa: E402
from mail import Recorder, ensure_aiosmtpd, start_dropgate  # noqa: E402
from startup import ensure_nginx, free_port  # noqa: E402

SECRET = "whsec_bench_signing_secret"


def notification(n):
    body = json.dumps({
        "id": f"evt_bench_{n}",
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": f"cs_bench_{n}", "payment_status": "paid", "payment_intent": f"pi_bench_{n}",
            "amount_total": 1900, "currency": "eur",
            "customer_details": {"email": f"buyer{n}@example.com", "name": f"Buyer {n}"},
            "metadata": {"dropgate_products": "book"},
        }},
    }).encode()
    t = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={sig}"}


def burst(port, path, requests, clients):
    """Sends `requests` (body, headers) over `clients` keep-alive connections; returns
    (latencies in ms, answers as (status, body), seconds for the whole burst)."""
    latencies = [0.0] * len(requests)
    answers = [None] * len(requests)
    next_index = iter(range(len(requests)))
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            body, headers = requests[i]
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            latencies[i] = (time.perf_counter() - started) * 1000
            answers[i] = (response.status, data)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, answers, time.perf_counter() - started


def summary(latencies):
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dropgate"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo xtask build` first")
    ensure_aiosmtpd()
    from aiosmtpd.controller import Controller
    nginx = ensure_nginx()

    work = tempfile.mkdtemp(prefix="dropgate-payments-bench-")
    data = os.path.join(work, "data")
    token = subprocess.run([args.binary, "token", "create", "--data-dir", data, "--name", "bench"],
                           capture_output=True, text=True, check=True).stdout.strip()
    recorder = Recorder()
    smtp_port, port, nginx_port = free_port(), free_port(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    base = f"http://127.0.0.1:{port}"
    dropgate = start_dropgate(args.binary, data, port, smtp_port)
    nginx_root = os.path.join(work, "nginx")
    os.makedirs(nginx_root)
    nginx_proc = None
    try:
        api(base, token, "POST", "/api/v1/products",
            {"product_id": "book", "name": "Book", "max_downloads": 3, "download_days": 31})
        api(base, token, "PUT", "/api/v1/integrations/stripe", {"enabled": True, "secrets": [SECRET]})

        requests = [notification(n) for n in range(args.count)]
        latencies, answers, seconds = burst(port, "/hooks/stripe", requests, args.clients)
        created = sum(1 for status, body in answers
                      if status == 200 and json.loads(body)["outcome"] == "order_created")
        p50, p99, worst = summary(latencies)
        print(f"{args.count} paid notifications, {args.clients} clients: {created} orders created, "
              f"{args.count / seconds:.0f} notifications/s; notification -> acknowledged answer "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, worst {worst:.1f} ms")
        if created != args.count:
            sys.exit(f"only {created} of {args.count} notifications created an order")

        again, answers, _ = burst(port, "/hooks/stripe", [notification(n) for n in range(args.count)], args.clients)
        duplicates = sum(1 for status, body in answers
                         if status == 200 and json.loads(body)["outcome"] == "duplicate")
        d50, d99, _ = summary(again)
        print(f"the same {args.count} redelivered: {duplicates} answered duplicate "
              f"(p50 {d50:.1f} ms, p99 {d99:.1f} ms)")
        if duplicates != args.count:
            sys.exit(f"{args.count - duplicates} redeliveries were not recognised as duplicates")

        missing = [n for n in range(args.count)
                   if len(api(base, token, "GET", f"/api/v1/orders?transaction_id=pi_bench_{n}")) != 1]
        if missing:
            sys.exit(f"{len(missing)} payments do not have exactly one order, e.g. pi_bench_{missing[0]}")
        print(f"every one of the {args.count} payments has exactly one order")

        expected = {f"buyer{n}@example.com" for n in range(args.count)}
        deadline = time.time() + 300
        while True:
            got = {rcpt for _, rcpt in recorder.snapshot()} & expected
            if len(got) == len(expected) or time.time() > deadline:
                break
            time.sleep(0.1)
        print(f"buyers' mails accepted by the SMTP server: {len(got)} of {args.count}")
        if len(got) != len(expected):
            sys.exit("mail was lost")

        os.makedirs(os.path.join(nginx_root, "files"))
        with open(os.path.join(nginx_root, "files", "small.bin"), "wb") as f:
            f.write(b"x")  # start_nginx waits for this file to be served
        for path in (work, nginx_root, os.path.join(nginx_root, "files")):
            os.chmod(path, 0o755)  # nginx's workers run as another user
        os.chmod(os.path.join(nginx_root, "files", "small.bin"), 0o644)
        nginx_proc = start_nginx(nginx, nginx_root, nginx_port)
        floor, _, _ = burst(nginx_port, "/hooks/stripe", [notification(n) for n in range(args.count)], args.clients)
        n50, n99, _ = summary(floor)
        print(f"nginx `return 200` for the same burst: p50 {n50:.2f} ms, p99 {n99:.2f} ms; "
              f"dropgate/nginx p50 {p50 / n50:.1f}x, p99 {p99 / n99:.1f}x "
              f"(dropgate verifies, stores and commits an order with mail per answer)")
    finally:
        dropgate.terminate()
        dropgate.wait()
        if nginx_proc:
            nginx_proc.terminate()
            nginx_proc.wait()
        controller.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
