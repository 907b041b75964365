#!/usr/bin/env python3
"""Measures how the HTTP side holds up against a hostile client on the farm's network.

    scripts/hostile.py [--bin target/release/biogestor] [flood] [ws-big] [ws-idle] [revoke]

Starts the binary on free loopback ports with a temporary data folder and runs each scenario
against its defaults, printing one line of figures per scenario:

  flood    under `ulimit -n 1024`, 1,100 half-open HTTP requests (a request line, never the
           end of the header) from 50 loopback source addresses; then whether the UI, the
           API, a new MQTT publish and /healthz still work, the server's open descriptors,
           and how long the half-open requests stay open (watched for 80 s at most; lifetimes
           count from each connection's opening, to a resolution of about 0.2 s).
  ws-big   four WebSocket clients each send one 60 MiB message at once: peak resident memory.
  ws-idle  1,500 WebSocket connections with one token, kept idle: how many were admitted and
           the resident memory with them open.
  revoke   a live feed whose account loses VerDashboard, and one whose token expires: how long
           each keeps streaming (watched for 45 s at most).

Only the Python standard library and mosquitto_pub (mosquitto-clients) are needed. Works against
older builds too: it only writes configuration keys every version understands.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ADMIN = ("admin", "Vacas-Pintas-2026")
USER_PASS = "Girasol-Morado-77"


_GIVEN_PORTS = set()


def free_port():
    """A free port not handed out before by this process (the kernel may offer one twice)."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


class Server:
    def __init__(self, binary, nofile=None):
        self.dir = tempfile.mkdtemp(prefix="hostile-")
        self.http = free_port()
        self.mqtt = free_port()
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(
                f'[http]\nbind = "127.0.0.1:{self.http}"\n'
                f'[mqtt]\nbind = "127.0.0.1:{self.mqtt}"\n'
                f'[mqtt.users]\nsensor = "clave-de-prueba"\n'
                f'[storage]\ndata_dir = "{self.dir}/data"\ncommit_interval_ms = 200\n'
                f'[log]\nlevel = "warn"\n'
            )
        subprocess.run(
            [binary, "user", "add", "--username", ADMIN[0], "--password", ADMIN[1],
             "--email", "admin@finca.test", "--admin", "--config", self.config],
            check=True, capture_output=True)
        cmd = f'exec "{binary}" serve --config "{self.config}"'
        if nofile:
            cmd = f"ulimit -n {nofile}; " + cmd
        self.log = open(os.path.join(self.dir, "serve.log"), "w")
        self.proc = subprocess.Popen(["sh", "-c", cmd], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.status("/healthz") == 200:
                break
            time.sleep(0.05)
        else:
            raise SystemExit("server did not start:\n" + open(self.log.name).read())
        self.token = self.login(*ADMIN)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, token=None, body=None, timeout=5):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, data=data, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except Exception as e:  # refused, reset, timed out
            return type(e).__name__, b""

    def status(self, path, token=None):
        return self.request("GET", path, token)[0]

    def login(self, user, password):
        status, body = self.request("POST", "/api/iniciar-sesion/", None,
                                    {"username": user, "password": password})
        assert status == 200, (status, body)
        return json.loads(body)["access"]

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return -1

    def mem_kb(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return -1

    def readings(self):
        status, body = self.request("GET", "/api/dashboard/stats/", self.token)
        return json.loads(body)["lecturas_total"] if status == 200 else None


def mqtt_publish(srv, n=1):
    for i in range(n):
        try:
            r = subprocess.run(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(srv.mqtt), "-u", "sensor",
                 "-P", "clave-de-prueba", "-q", "1", "-t", "Prueba", "-i", f"hostile-{i}",
             "-m", json.dumps({"presion": 1000 + i})],
                capture_output=True, text=True, timeout=15)
        except subprocess.TimeoutExpired:
            return "no answer in 15 s"
        if r.returncode != 0:
            return r.stderr.strip() or f"exit {r.returncode}"
    return "ok"


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def flood(binary):
    raise_nofile(8192)
    srv = Server(binary, nofile=1024)
    base_fds = srv.fds()
    socks = []
    for i in range(1100):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 50}", 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", srv.http))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            socks.append((s, time.time()))
        except OSError:
            s.close()
    time.sleep(1.0)
    fds = srv.fds()
    t0 = time.time()
    probes = {
        "ui": srv.status("/"),
        "api": srv.request("GET", "/api/dashboard/stats/", srv.token)[0],
        "healthz": srv.status("/healthz"),
    }
    before = srv.readings()
    probes["mqtt"] = mqtt_publish(srv)
    time.sleep(1.0)
    after = srv.readings()
    probes["stored"] = (after - before) if (after is not None and before is not None) else None
    probe_s = time.time() - t0
    # How long do the half-open requests stay open?
    start = time.time()
    open_socks = list(socks)
    lifetimes = []
    while open_socks and time.time() - start < 80:
        still = []
        for s, opened in open_socks:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":  # closed by the server (an error answer may come first)
                lifetimes.append(time.time() - opened)
                s.close()
                continue
            still.append((s, opened))
        open_socks = still
        time.sleep(0.2)
    for s, _ in open_socks:
        s.close()
    log = open(srv.log.name).read()
    emfile = log.count("Too many open files") + log.count("os error 24")
    srv.stop()
    held = len(open_socks)
    print(json.dumps({
        "scenario": "flood", "connections": len(socks), "server_fds_idle": base_fds,
        "server_fds_under_attack": fds, "probes": probes, "probe_seconds": round(probe_s, 2),
        "still_open_after_80s": held,
        "closed_by_server": len(lifetimes),
        "longest_lived_s": round(max(lifetimes), 1) if lifetimes else None,
        "log_too_many_open_files": emfile,
    }))


def ws_handshake(srv, token, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.http))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws/mqtt/?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return s, status


def ws_big(binary):
    srv = Server(binary)
    rss0 = srv.mem_kb("VmRSS")
    size = 60 << 20
    # Four 15 MiB frames (a single frame over 16 MiB is refused by the WebSocket library's
    # default frame limit; a fragmented message is not). A zero mask leaves the payload as it
    # is, so the 60 MiB need no per-byte work here.
    frame = 15 << 20

    def frame_head(i):
        opcode = 0x2 if i == 0 else 0x0
        fin = 0x80 if i == 3 else 0
        return bytes([fin | opcode, 0x80 | 127]) + frame.to_bytes(8, "big") + b"\0\0\0\0"

    chunk = b"x" * (1 << 20)
    results = []

    def send():
        sent = 0
        try:
            s, status = ws_handshake(srv, srv.token)
            for i in range(4):
                s.sendall(frame_head(i))
                for _ in range(frame // len(chunk)):
                    s.sendall(chunk)
                    sent += len(chunk)
            results.append(("sent", sent >> 20, status))
        except OSError as e:
            results.append((type(e).__name__, sent >> 20))

    peak = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], srv.mem_kb("VmRSS"))
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.time()
    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2)
    stop.set()
    w.join()
    hwm = srv.mem_kb("VmHWM")
    srv.stop()
    print(json.dumps({
        "scenario": "ws-big", "rss_idle_mib": round(rss0 / 1024, 1),
        "rss_peak_mib": round(peak[0] / 1024, 1), "vmhwm_mib": round(hwm / 1024, 1),
        "clients": results, "seconds": round(time.time() - t0, 1),
    }))


def ws_idle(binary):
    raise_nofile(8192)
    srv = Server(binary, nofile=8192)
    rss0 = srv.mem_kb("VmRSS")
    socks, statuses = [], {}
    for i in range(1500):
        try:
            s, status = ws_handshake(srv, srv.token, src=f"127.0.0.{2 + i % 100}")
        except OSError as e:
            statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
            continue
        statuses[status] = statuses.get(status, 0) + 1
        if status == 101:
            socks.append(s)
        else:
            s.close()
    time.sleep(2)
    rss = srv.mem_kb("VmRSS")
    for s in socks:
        s.close()
    srv.stop()
    print(json.dumps({
        "scenario": "ws-idle", "attempts": 1500, "statuses": {str(k): v for k, v in statuses.items()},
        "rss_idle_mib": round(rss0 / 1024, 1), "rss_with_sockets_mib": round(rss / 1024, 1),
    }))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def short_token(srv, user_id, seconds):
    with open(os.path.join(srv.dir, "data", "jwt-secret")) as f:
        secret = f.read().strip().encode()
    now = int(time.time())
    claims = {"sub": user_id, "typ": "access", "jti": b64url(os.urandom(12)),
              "iat": now, "exp": now + seconds}
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def feed_lifetime(srv, sock, deadline_s):
    """Seconds until the server closes the feed (and the close code), publishing meanwhile."""
    sock.settimeout(0.5)
    start = time.time()
    buf = b""
    i = 0
    while time.time() - start < deadline_s:
        mqtt_publish(srv) if i % 4 == 0 else None
        i += 1
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return round(time.time() - start, 1), None
        if not data:
            return round(time.time() - start, 1), None
        buf += data
        # A close frame: opcode 8, unmasked from the server.
        idx = buf.find(b"\x88")
        if idx >= 0 and len(buf) >= idx + 4:
            code = int.from_bytes(buf[idx + 2: idx + 4], "big")
            return round(time.time() - start, 1), code
    return None, None


def revoke(binary):
    srv = Server(binary)
    st, body = srv.request("POST", "/api/crear-usuario/", None, {
        "username": "operario", "password": USER_PASS, "password2": USER_PASS,
        "email": "operario@finca.test"})
    uid = json.loads(body)["usuario"]["id"]
    srv.request("POST", f"/api/usuario/{uid}/aprobar/", srv.token, {"permisos": ["VerDashboard"]})
    tok = srv.login("operario", USER_PASS)
    sock, status = ws_handshake(srv, tok)
    srv.request("POST", f"/api/usuarios/{uid}/cambiar-permisos/", srv.token, {"permisos": []})
    removed = feed_lifetime(srv, sock, 45)
    sock.close()
    me = json.loads(srv.request("GET", "/api/usuario/actual/", srv.token)[1])["id"]
    sock, status2 = ws_handshake(srv, short_token(srv, me, 3))
    expired = feed_lifetime(srv, sock, 45)
    sock.close()
    srv.stop()
    print(json.dumps({
        "scenario": "revoke", "upgrade": [status, status2],
        "permission_removed_closed_after_s": removed[0], "close_code": removed[1],
        "token_expiring_in_3s_closed_after_s": expired[0], "close_code_expired": expired[1],
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default="target/release/biogestor")
    p.add_argument("scenarios", nargs="*", default=["flood", "ws-big", "ws-idle", "revoke"])
    a = p.parse_args()
    for name in a.scenarios:
        {"flood": flood, "ws-big": ws_big, "ws-idle": ws_idle, "revoke": revoke}[name](a.bin)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
