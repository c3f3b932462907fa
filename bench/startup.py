#!/usr/bin/env python3
"""Start-up and idle-memory benchmark: dropgate against nginx, in the same run.

Measures, for each server, the time from process start to the first successful answer
(dropgate: GET /healthz, nginx: GET /healthz from a static location) and the resident
memory once idle (all processes of the server summed). Prints both and the ratios.

Usage: python3 bench/startup.py [--runs N] [--binary target/dropgate]
(`cargo xtask bench` builds the binary and runs this.)
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url, deadline_s=15.0):
    start = time.perf_counter()
    while time.perf_counter() - start < deadline_s:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer within {deadline_s}s")


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def measure_dropgate(binary):
    data = tempfile.mkdtemp(prefix="dropgate-bench-")
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_ok(f"http://127.0.0.1:{port}/healthz")
        ready = time.perf_counter() - started
        time.sleep(1.0)
        return ready, rss_kib([proc.pid])
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def measure_nginx(nginx):
    root = tempfile.mkdtemp(prefix="nginx-bench-")
    port = free_port()
    with open(os.path.join(root, "healthz"), "w") as f:
        f.write('{"status":"ok"}')
    # nginx workers drop to an unprivileged user: let them read the document root.
    os.chmod(root, 0o755)
    os.chmod(os.path.join(root, "healthz"), 0o644)
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
""")
    started = time.perf_counter()
    proc = subprocess.Popen([nginx, "-c", conf, "-p", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ok(f"http://127.0.0.1:{port}/healthz")
        ready = time.perf_counter() - started
        time.sleep(1.0)
        return ready, rss_kib([proc.pid] + children(proc.pid))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def ensure_nginx():
    for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and os.path.exists(candidate):
            return candidate
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "nginx-light"], check=False,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if os.path.exists("/usr/sbin/nginx"):
        return "/usr/sbin/nginx"
    sys.exit("nginx is needed for the comparison: apt-get install nginx-light")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dropgate"))
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo xtask build` first")
    nginx = ensure_nginx()

    rows = {"dropgate": [], "nginx": []}
    for _ in range(args.runs):
        rows["dropgate"].append(measure_dropgate(args.binary))
        rows["nginx"].append(measure_nginx(nginx))

    def summary(name):
        ready = statistics.median(r for r, _ in rows[name]) * 1000
        rss = statistics.median(m for _, m in rows[name]) / 1024
        return ready, rss

    d_ready, d_rss = summary("dropgate")
    n_ready, n_rss = summary("nginx")
    print(f"median of {args.runs} runs          start→first 200   idle RSS")
    print(f"dropgate (/healthz, redb open)   {d_ready:8.1f} ms      {d_rss:7.1f} MiB")
    print(f"nginx    (static file)           {n_ready:8.1f} ms      {n_rss:7.1f} MiB")
    print(f"ratio dropgate / nginx           {d_ready / n_ready:8.2f} x       {d_rss / n_rss:7.2f} x")


if __name__ == "__main__":
    main()
