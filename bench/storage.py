#!/usr/bin/env python3
"""S3 delivery: proxy mode next to local disk and nginx, and presigned redirects.

In one run, on loopback, with a local S3 server (s3s-fs, which checks SigV4 signatures)
holding the same 1 GiB object that sits on local disk:

  * one full download through a download password from a dropgate on local disk
    (sendfile), from a dropgate in S3 proxy mode (the bytes stream through it from
    s3s-fs), straight from s3s-fs (a presigned URL, curl), and from nginx (sendfile):
    MiB/s and the ratios proxy/local and proxy/s3s-fs;
  * presigned redirects per second: wrk on a download link of a dropgate that redirects
    to S3 (each answer is a 302 with a fresh signed URL, and each is charged and
    journaled as a download).

Both files are attached to their products (`POST /files/attach`: read once, not copied).
`--size-mib` and `--seconds` shorten it.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from downloads import api, ensure_tool, start_nginx, status_kib, throughput  # noqa: E402
from startup import ensure_nginx, free_port, wait_ok  # noqa: E402

ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key-0123456789"
BUCKET = "bench"


def s3s_fs():
    """The s3s-fs binary, installed with cargo when missing (as `cargo xtask test` does)."""
    path = os.path.join(os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo")), "bin", "s3s-fs")
    if not os.path.exists(path):
        subprocess.run(["cargo", "install", "s3s-fs@0.14.1", "--features", "binary", "--locked"], check=True)
    return path


def start_s3(root, port):
    proc = subprocess.Popen(
        [s3s_fs(), "--host", "127.0.0.1", "--port", str(port),
         "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            import socket
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("s3s-fs did not start")


def start_dropgate(binary, data, port, extra, env=None):
    token = subprocess.run([binary, "token", "create", "--data-dir", data, "--name", "bench"],
                           capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}",
         "--download-rate-per-link", "0", "--download-rate-per-client", "0", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    wait_ok(f"http://127.0.0.1:{port}/healthz")
    return proc, token


def link_for(base, token, key):
    """A product with `key` attached and an order for it: the download link."""
    api(base, token, "POST", "/api/v1/products",
        {"product_id": "film", "name": "Film", "max_downloads": 0, "download_days": 0})
    started = time.perf_counter()
    file = api(base, token, "POST", "/api/v1/products/film/files/attach", {"key": key})
    attach = time.perf_counter() - started
    order = api(base, token, "POST", "/api/v1/orders", {"email": "bench@example.com", "product_ids": ["film"]})
    return f"{order['issued'][0]['url']}/{file['file_id']}", attach


def presigned_url(link):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", link],
                         capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "302":
        sys.exit(f"expected a redirect from {link}, got {out[0]}")
    return out[1]


def redirect_rate(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    other = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return rate, int(other.group(1)) if other else 0, p99.group(1) if p99 else "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dropgate"))
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the object")
    parser.add_argument("--seconds", type=int, default=10, help="length of the wrk run")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo xtask build` first")
    ensure_tool("curl", "curl")
    ensure_tool("wrk", "wrk")
    nginx_bin = ensure_nginx()

    work = tempfile.mkdtemp(prefix="dropgate-s3-bench-")
    os.chmod(work, 0o755)
    size = args.size_mib * 1024 * 1024
    # The same bytes in three places: nginx's folder, the local store, the bucket.
    files = os.path.join(work, "files")
    local_store = os.path.join(work, "local", "files", "masters")
    bucket = os.path.join(work, "s3", BUCKET, "store", "masters")
    for d in (files, local_store, bucket):
        os.makedirs(d)
    big = os.path.join(files, "big.bin")
    with open(big, "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(args.size_mib):
            f.write(block)
    with open(os.path.join(files, "small.bin"), "wb") as f:
        f.write(b"x")
    os.chmod(big, 0o644)
    shutil.copyfile(big, os.path.join(local_store, "film.bin"))
    shutil.copyfile(big, os.path.join(bucket, "film.bin"))

    s3_port, nginx_port = free_port(), free_port()
    procs = []
    try:
        procs.append(start_s3(os.path.join(work, "s3"), s3_port))
        procs.append(start_nginx(nginx_bin, work, nginx_port))
        env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}
        s3_flags = ["--storage-url", f"s3://{BUCKET}/store", "--s3-endpoint", f"http://127.0.0.1:{s3_port}"]
        bases = {}
        pids = {}
        for name, extra in (("local", []), ("proxy", s3_flags + ["--s3-proxy"]), ("redirect", s3_flags)):
            port = free_port()
            proc, token = start_dropgate(args.binary, os.path.join(work, name),
                                         port, extra, env)
            procs.append(proc)
            pids[name] = proc.pid
            bases[name] = (f"http://127.0.0.1:{port}", token)
        links = {}
        for name, (base, token) in bases.items():
            links[name], attach = link_for(base, token, "masters/film.bin")
            print(f"attach of the {args.size_mib} MiB object ({name} store): {attach:.1f} s (read once for its SHA-256)")

        direct = presigned_url(links["redirect"])
        nginx_url = f"http://127.0.0.1:{nginx_port}/plain/big.bin"
        throughput(nginx_url, 1, size)  # warm the page cache
        print(f"\none download of {args.size_mib} MiB, MiB/s (best of 2)")
        figures = {}
        for name, url in (("dropgate, local disk (sendfile)", links["local"]),
                          ("dropgate, S3 proxy mode", links["proxy"]),
                          ("s3s-fs, presigned URL", direct),
                          ("nginx, sendfile", nginx_url)):
            figures[name] = max(throughput(url, 1, size) for _ in range(2))
            print(f"  {name:<34} {figures[name]:8.0f}")
        proxy = figures["dropgate, S3 proxy mode"]
        print(f"  proxy / local disk   {proxy / figures['dropgate, local disk (sendfile)']:5.2f} x")
        print(f"  proxy / s3s-fs direct {proxy / figures['s3s-fs, presigned URL']:5.2f} x")
        print(f"  proxy / nginx        {proxy / figures['nginx, sendfile']:5.2f} x")
        print(f"  peak memory of the proxy-mode dropgate (VmHWM, attach and downloads included): "
              f"{status_kib(pids['proxy'], 'VmHWM') / 1024:.1f} MiB")

        rate, other, p99 = redirect_rate(links["redirect"], args.seconds)
        print(f"\npresigned redirects (wrk, 32 connections, {args.seconds} s): {rate:,.0f} per second, p99 {p99}"
              f"{'' if other == 0 else f', {other} answers that were not redirects'}")
        base, token = bases["redirect"]
        counted = sum(len(g["uses"]) for g in api(base, token, "POST", "/api/v1/grants/lookup",
                                                    {"email": "bench@example.com"}))
        print(f"  uses in the password desk: {counted} (the desk keeps the newest; each redirect is charged)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
