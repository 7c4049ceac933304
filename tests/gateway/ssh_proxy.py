#!/usr/bin/python3
"""The OpenShell CLI's way into a sandbox's SSH server, for tests and benchmarks: OpenSSH's client
with a ProxyCommand that gets a fresh gateway relay for each connection and bridges to it.

In-process: SshRelays(gw) listens on 127.0.0.1; each connection to it makes the test gateway send
RelayOpen(ssh) on the live session, waits for RelayOpenResult and answers "PORT\n" (the relay's
local bridge, tests/gateway/gateway.py) or "ERR why\n". As a script (the ProxyCommand),
`ssh_proxy.py CONTROL_PORT` asks for a relay, then copies stdin to it and it to stdout, as
`openshell ssh-proxy` does after CreateSshSession. One relay carries exactly one SSH connection.
"""

import os
import socket
import sys
import threading


class SshRelays:
    """Opens one gateway relay per ProxyCommand that asks; remembers them all in .relays."""

    def __init__(self, gw, result_timeout=10.0):
        self.gw = gw
        self.result_timeout = result_timeout
        self.relays = []
        self.results = []
        self._lock = threading.Lock()
        self._lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lst.bind(("127.0.0.1", 0))
        self._lst.listen(64)
        self.port = self._lst.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def proxy_command(self):
        return "/usr/bin/python3 %s %d" % (os.path.abspath(__file__), self.port)

    def ssh_opts(self):
        """OpenSSH client options for a connection through a fresh relay."""
        return ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "-o", "ProxyCommand=" + self.proxy_command()]

    def close(self):
        try:
            self._lst.close()
        except OSError:
            pass

    def _serve(self):
        while True:
            try:
                c, _ = self._lst.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            rel = self.gw.open_relay("ssh")
            with self._lock:
                self.relays.append(rel)
            res = rel.wait_result(self.result_timeout)
            with self._lock:
                self.results.append(res)
            if res.get("success") is True:
                c.sendall(b"%d\n" % rel.port)
            else:
                c.sendall(b"ERR relay refused: %s\n" % res.get("error", "").encode())
        except Exception as e:  # no session, no result: the client is told why
            c.sendall(b"ERR %s: %s\n" % (type(e).__name__.encode(), str(e).encode()))
        finally:
            c.close()


def _proxy(control_port):
    c = socket.create_connection(("127.0.0.1", control_port))
    line = c.makefile("rb").readline().decode(errors="replace").strip()
    c.close()
    if not line.isdigit():
        sys.stderr.write("ssh_proxy: %s\n" % (line or "no answer from the relay dispatcher"))
        return 1
    s = socket.create_connection(("127.0.0.1", int(line)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def up():
        try:
            while True:
                d = os.read(0, 65536)
                if not d:
                    break
                s.sendall(d)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=up, daemon=True).start()
    while True:
        d = s.recv(65536)
        if not d:
            break
        os.write(1, d)
    return 0


if __name__ == "__main__":
    sys.exit(_proxy(int(sys.argv[1])))
