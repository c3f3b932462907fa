#!/usr/bin/env python3
"""Download benchmark: dropgate against nginx, in the same run, on loopback.

1. Large-file throughput: 1 and 32 concurrent downloads of a 1 GiB file through a
   download password (dropgate: rules checked, bytes reserved and settled in redb) against
   nginx serving the same file with sendfile. Clients are curl processes.
2. Small-file rate: requests per second for a 1 KiB file through a download password
   against nginx with secure_link (an MD5-signed, expiring link: the closest nginx has to
   a checked download link). Load from wrk. Afterwards the script reads dropgate's ledger
   through the password desk and checks that every answered download was counted.
3. Dropgate's peak RSS (VmHWM) while 256 large downloads are in flight (curl with a rate
   limit, so all 256 stay open for the sampling window).

Prints each figure and the dropgate/nginx ratios. Targets: large-file throughput >= 0.8x,
1 KiB rate >= 0.25x, peak RSS < 150 MiB.

Usage: python3 bench/downloads.py [--binary target/dropgate] [--size-mib 1024] [--seconds 10]
(`cargo xtask bench` builds the binary and runs this after startup.py.) Needs curl and wrk
(installed from Debian when missing).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from startup import ensure_nginx, free_port, wait_ok  # noqa: E402

SECRET = "bench-secure-link-secret"


def ensure_tool(name, package):
    if shutil.which(name):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", package], check=False,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not shutil.which(name):
        sys.exit(f"{name} is needed: apt-get install {package}")


def api(base, token, method, path, body=None, data=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")


def upload(base, token, product, name, path):
    """Streams a file into dropgate (curl, so a 1 GiB body is never held in memory here)."""
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-X", "PUT", "-H", f"Authorization: Bearer {token}",
         "-H", "Content-Type: application/octet-stream", "-T", path,
         f"{base}/api/v1/products/{product}/files/{name}"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def curl_many(url, count, limit_rate=None):
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}\n"]
    if limit_rate:
        args += ["--limit-rate", limit_rate]
    return [subprocess.Popen(args + [url], stdout=subprocess.PIPE, text=True) for _ in range(count)]


def throughput(url, count, size):
    """MiB/s summed over `count` concurrent full downloads."""
    started = time.perf_counter()
    procs = curl_many(url, count)
    total = 0
    for p in procs:
        out, _ = p.communicate()
        status, got = out.split()
        if status != "200" or int(got) != size:
            sys.exit(f"download failed: {url} answered {status} with {got} bytes")
        total += int(got)
    return total / (time.perf_counter() - started) / (1024 * 1024)


def wrk_rate(url, seconds, connections=32):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return rate, requests, int(non2xx.group(1)) if non2xx else 0, p99.group(1) if p99 else "?"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def start_nginx(nginx, root, port):
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes auto;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root}/files;
    location /plain/ {{ alias {root}/files/; }}
    # bench/payments.py: the floor of answering a POST (no verification, no storage).
    location /hooks/ {{ return 200 '{{"outcome":"ok"}}'; }}
    location /signed/ {{
      secure_link $arg_md5,$arg_expires;
      secure_link_md5 "$secure_link_expires$uri {SECRET}";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
      alias {root}/files/;
    }}
  }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", conf, "-p", root],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ok(f"http://127.0.0.1:{port}/plain/small.bin")
    return proc


def secure_link(port, path):
    expires = str(int(time.time()) + 3600)
    digest = hashlib.md5(f"{expires}{path} {SECRET}".encode()).digest()
    md5 = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return f"http://127.0.0.1:{port}{path}?md5={md5}&expires={expires}"


def start_dropgate(binary, data, port):
    token = subprocess.run([binary, "token", "create", "--data-dir", data, "--name", "bench"],
                           capture_output=True, text=True, check=True).stdout
    token = token.strip()  # the secret is the only line on stdout
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}",
         "--upload-limit", str(8 * 1024 ** 3),
         # wrk hits one link tens of thousands of times a second: no /d/ rate limits.
         "--download-rate-per-link", "0", "--download-rate-per-client", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ok(f"http://127.0.0.1:{port}/healthz")
    return proc, token


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dropgate"))
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large file")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--only", choices=["large", "small", "memory"], help="run one part")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo xtask build` first")
    ensure_nginx()
    ensure_tool("curl", "curl")
    ensure_tool("wrk", "wrk")

    work = tempfile.mkdtemp(prefix="dropgate-dl-bench-")
    os.chmod(work, 0o755)
    files = os.path.join(work, "files")
    os.makedirs(files)
    os.chmod(files, 0o755)
    big = os.path.join(files, "big.bin")
    small = os.path.join(files, "small.bin")
    size = args.size_mib * 1024 * 1024
    with open(big, "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(args.size_mib):
            f.write(block)
    with open(small, "wb") as f:
        f.write(os.urandom(1024))
    for p in (big, small):
        os.chmod(p, 0o644)

    nginx_port, dg_port = free_port(), free_port()
    nginx = start_nginx(ensure_nginx(), work, nginx_port)
    data = os.path.join(work, "dropgate")
    dropgate, token = start_dropgate(args.binary, data, dg_port)
    base = f"http://127.0.0.1:{dg_port}"
    try:
        for product, name in (("big", "big.bin"), ("small", "small.bin")):
            api(base, token, "POST", "/api/v1/products",
                {"product_id": product, "name": product, "max_downloads": 100_000_000, "download_days": 0})
        big_file = upload(base, token, "big", "big.bin", big)["file_id"]
        small_file = upload(base, token, "small", "small.bin", small)["file_id"]
        order = api(base, token, "POST", "/api/v1/orders",
                    {"email": "bench@example.com", "product_ids": ["big", "small"]})
        links = {g["product_id"]: g["url"] for g in order["issued"]}
        dg_big = f"{links['big']}/{big_file}"
        dg_small = f"{links['small']}/{small_file}"
        ng_big = f"http://127.0.0.1:{nginx_port}/plain/big.bin"
        ng_small = secure_link(nginx_port, "/signed/small.bin")
        # Warm the page cache for both.
        throughput(ng_big, 1, size)

        print(f"large file ({args.size_mib} MiB), MiB/s summed over all downloads")
        results = {}
        for count in (1, 32) if args.only in (None, "large") else ():
            d = max(throughput(dg_big, count, size) for _ in range(2 if count == 1 else 1))
            n = max(throughput(ng_big, count, size) for _ in range(2 if count == 1 else 1))
            results[count] = (d, n)
            print(f"  {count:>2} concurrent   dropgate {d:9.0f}   nginx sendfile {n:9.0f}   ratio {d / n:5.2f} x")

        if args.only in (None, "small"):
            small_rate(args, dropgate, base, token, dg_small, ng_small)
        if args.only in (None, "memory"):
            peak_memory(args, dropgate, dg_big)
    finally:
        dropgate.terminate()
        nginx.terminate()
        dropgate.wait()
        nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_writes(base):
    """The store's grouped-write counters from /metrics (dropgate_store_*_total)."""
    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        text = r.read().decode()
    found = re.findall(r"^dropgate_store_(\w+)_total (\d+)$", text, re.M)
    return {name: int(value) for name, value in found}


def small_rate(args, dropgate, base, token, dg_small, ng_small):
    print(f"1 KiB file through a checked link, wrk -t2 -c32 -d{args.seconds}s")
    before = api(base, token, "POST", "/api/v1/grants/lookup", {"email": "bench@example.com"})
    used_before = {g["product_id"]: g for g in before}["small"]
    cpu_before = cpu_seconds(dropgate.pid)
    writes_before = store_writes(base)
    d_rate, d_requests, d_bad, d_p99 = wrk_rate(dg_small, args.seconds)
    # CPU per download varies far less between runs than req/s on a shared machine.
    cpu_per_request = (cpu_seconds(dropgate.pid) - cpu_before) / max(d_requests, 1) * 1e6
    writes = {k: v - writes_before.get(k, 0) for k, v in store_writes(base).items()}
    n_rate, n_requests, n_bad, n_p99 = wrk_rate(ng_small, args.seconds)
    print(f"  dropgate (password, redb ledger)  {d_rate:9.0f} req/s   p99 {d_p99:>8}   non-2xx {d_bad}")
    print(f"  nginx (secure_link)               {n_rate:9.0f} req/s   p99 {n_p99:>8}   non-2xx {n_bad}")
    print(f"  ratio                             {d_rate / n_rate:9.2f} x")
    print(f"  dropgate CPU per download         {cpu_per_request:9.1f} us")
    commits = max(writes.get("commits", 0), 1)
    print(f"  dropgate commits                  {writes.get('commits', 0):9d}"
          f"   {writes.get('committed_jobs', 0) / commits:.1f} downloads each,"
          f" {writes.get('journaled_commits', 0)} made durable by the journal,"
          f" {writes.get('journal_checkpoints', 0)} checkpoints")
    time.sleep(1.0)  # let the last bodies settle
    after = {g["product_id"]: g for g in api(base, token, "POST", "/api/v1/grants/lookup",
                                             {"email": "bench@example.com"})}["small"]
    counted = round(sum(f["downloads_used"] for f in after["files"])
                    - sum(f["downloads_used"] for f in used_before["files"]))
    answered = d_requests - d_bad
    print(f"  ledger: {counted} downloads counted for {answered} answered by wrk"
          f" ({'every one counted' if counted >= answered else 'MISSING COUNTS'})")



def peak_memory(args, dropgate, dg_big):
    print("256 concurrent large downloads (2 MiB/s each), dropgate memory")
    procs = curl_many(dg_big, 256, limit_rate="2M")
    peak_rss = 0
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        peak_rss = max(peak_rss, status_kib(dropgate.pid, "VmRSS"))
        time.sleep(0.1)
    hwm = status_kib(dropgate.pid, "VmHWM")
    open_conns = sum(1 for p in procs if p.poll() is None)
    for p in procs:
        p.kill()
        p.wait()
    print(f"  in flight {open_conns}/256   RSS sampled max {peak_rss / 1024:.1f} MiB   "
          f"peak (VmHWM, whole run) {hwm / 1024:.1f} MiB   target < 150 MiB")


if __name__ == "__main__":
    main()
