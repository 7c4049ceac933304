"""SSH server benchmark: OpenSSH's client against the supervisor's embedded server and, in the same
invocation, against Debian's OpenSSH sshd on this machine; reported as ratios, never a verdict.

  sudo /usr/bin/python3 bench/ssh.py build/supervisor [MiB]

Measures `ssh exec true` round trips per second (sequential), sftp put and get throughput of a
file (256 MiB by default) and the supervisor's RSS with 20 sessions open. Both servers are reached
through the same ProxyCommand bridge (unix socket for ours, TCP on 127.0.0.1 for sshd), so the
bridge's cost is in both. The supervisor runs on the host (not PID 1) with the nobody identity, in
gateway mode against the Python test gateway (tests/gateway/), so the same server is also reached
the way the OpenShell CLI reaches it: a ProxyCommand that gets a RelayOpen(ssh) per connection
(tests/gateway/ssh_proxy.py) and bridges to its RelayStream. The relay lines compare that path
with the socket and with sshd. Everything it creates is removed at exit.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "gateway"))
import gateway as g  # noqa: E402
from ssh_proxy import SshRelays  # noqa: E402

BRIDGE = r"""import os, socket, sys, threading
a = sys.argv[1]
if ":" in a and not a.startswith("/"):
    h, p = a.rsplit(":", 1)
    s = socket.create_connection((h, int(p)))
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a)
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            break
        s.sendall(d)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d:
        break
    os.write(1, d)
"""


def client_opts(tmp, target, key=None):
    """@target: a socket path, HOST:PORT (through bridge.py), or an SshRelays (a fresh relay)."""
    if isinstance(target, SshRelays):
        proxy = target.proxy_command()
    else:
        proxy = "/usr/bin/python3 %s/bridge.py %s" % (tmp, target)
    o = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ProxyCommand=" + proxy]
    if key:
        o += ["-i", key, "-o", "IdentitiesOnly=yes"]
    return o


def rps(tmp, target, user, key, n=40):
    argv = ["ssh"] + client_opts(tmp, target, key) + ["-T", user + "@bench", "true"]
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, timeout=30)
    return n / (time.monotonic() - t0)


def sftp_mbps(tmp, target, user, key, src, remote, mib):
    back = os.path.join(tmp, "back.bin")
    res = {}
    for what, cmd in (("put", "put %s %s\n" % (src, remote)), ("get", "get %s %s\n" % (remote, back))):
        t0 = time.monotonic()
        r = subprocess.run(["sftp"] + client_opts(tmp, target, key) + ["-b", "-", user + "@bench"],
                           input=cmd.encode(), capture_output=True, timeout=600)
        if r.returncode != 0:
            raise SystemExit("sftp %s to %s failed: %s" % (what, target, r.stderr.decode()[-500:]))
        res[what] = mib / (time.monotonic() - t0)
    return res


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_sshd(tmp):
    port = 22000 + os.getpid() % 20000
    key = os.path.join(tmp, "hostkey")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    ukey = os.path.join(tmp, "userkey")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ukey], check=True)
    auth = os.path.join(tmp, "authorized_keys")
    shutil.copy(ukey + ".pub", auth)
    os.chmod(tmp, 0o755)
    conf = os.path.join(tmp, "sshd_config")
    with open(conf, "w") as f:
        f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\n"
                "PermitRootLogin yes\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp /usr/lib/openssh/sftp-server\nPidFile none\nUseDNS no\n"
                "KbdInteractiveAuthentication no\n" % (port, key, auth))
    os.makedirs("/run/sshd", exist_ok=True)
    p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, "127.0.0.1:%d" % port, ukey
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("sshd did not start")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    sup = os.path.abspath(sys.argv[1])
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    tmp = tempfile.mkdtemp(prefix="sshbench-")
    os.chmod(tmp, 0o755)  # the agent (nobody) reaches its workdir through it
    procs = []
    gw = g.Gateway(sandbox_id="sshbench", max_workers=200)  # a worker per open RelayStream
    relays = SshRelays(gw)
    try:
        with open(os.path.join(tmp, "bridge.py"), "w") as f:
            f.write(BRIDGE)
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        os.chown(work, 65534, 65534)
        sock = os.path.join(tmp, "run", "ssh.sock")
        env = dict(os.environ, OPENSHELL_SSH_SOCKET_PATH=sock, OPENSHELL_SANDBOX_UID="65534",
                   OPENSHELL_SANDBOX_GID="65534", OPENSHELL_ENDPOINT=gw.endpoint,
                   OPENSHELL_SANDBOX_ID="sshbench")
        sv = subprocess.Popen([sup, "--exit-report-timeout", "1", "--workdir", work, "--",
                               "sleep", "100000"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sv)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        for _ in range(300):
            if gw.sessions():
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the supervisor never opened its gateway session")
        peer, peer_target, ukey = start_sshd(tmp)
        procs.append(peer)
        src = os.path.join(tmp, "src.bin")
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        os.chmod(src, 0o644)
        ours = {"rps": rps(tmp, sock, "sandbox", None)}
        theirs = {"rps": rps(tmp, peer_target, "root", ukey)}
        relayed = {"rps": rps(tmp, relays, "sandbox", None)}
        ours.update(sftp_mbps(tmp, sock, "sandbox", None, src, os.path.join(work, "up.bin"), mib))
        theirs.update(sftp_mbps(tmp, peer_target, "root", ukey, src,
                                os.path.join(tmp, "peer-up.bin"), mib))
        relayed.update(sftp_mbps(tmp, relays, "sandbox", None, src,
                                 os.path.join(work, "relay-up.bin"), mib))
        idle = rss_kib(sv.pid)
        sessions = [subprocess.Popen(["ssh"] + client_opts(tmp, sock) +
                                     ["-T", "sandbox@bench", "sleep", "60"],
                                     stdin=subprocess.DEVNULL) for _ in range(20)]
        procs += sessions
        time.sleep(3)
        busy = rss_kib(sv.pid)
        rsessions = [subprocess.Popen(["ssh"] + client_opts(tmp, relays) +
                                      ["-T", "sandbox@bench", "sleep", "60"],
                                      stdin=subprocess.DEVNULL) for _ in range(20)]
        procs += rsessions
        time.sleep(5)
        rbusy = rss_kib(sv.pid)
        print("ssh exec true      ours %7.1f/s   sshd %7.1f/s   ratio %.2f"
              % (ours["rps"], theirs["rps"], ours["rps"] / theirs["rps"]))
        for k in ("put", "get"):
            print("sftp %s %4d MiB  ours %7.1f MiB/s sshd %7.1f MiB/s ratio %.2f"
                  % (k, mib, ours[k], theirs[k], ours[k] / theirs[k]))
        print("supervisor RSS     idle %d KiB, with 20 sessions %d KiB (+%d KiB)"
              % (idle, busy, busy - idle))
        print("through the gateway relay (a RelayOpen per connection, Python test gateway):")
        print("ssh exec true      relay %7.1f/s   relay/socket %.2f   relay/sshd %.2f"
              % (relayed["rps"], relayed["rps"] / ours["rps"], relayed["rps"] / theirs["rps"]))
        for k in ("put", "get"):
            print("sftp %s %4d MiB  relay %7.1f MiB/s relay/socket %.2f relay/sshd %.2f"
                  % (k, mib, relayed[k], relayed[k] / ours[k], relayed[k] / theirs[k]))
        print("supervisor RSS     with 20 more sessions through relays %d KiB (+%d KiB)"
              % (rbusy, rbusy - busy))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        relays.close()
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
