#!/usr/bin/python3
"""A scriptable OpenShell gateway for tests: the gRPC service the supervisor talks to.

Debian's python3-grpcio and python3-protobuf only. The messages are generated at import time by
`protoc --python_out` from the project's own session/proto/*.proto into a temporary directory;
the service is registered with grpc.method_handlers_generic_handler (no grpc_tools). It records
every call and message it receives (with the call's metadata, e.g. authorization) and never
decides anything the test did not configure.

In-process use (what the integration tests do):

    import gateway as g
    gw = g.Gateway(sandbox_id="sb-1")                    # h2c on 127.0.0.1, a free port
    gw = g.Gateway(tls=g.make_pki(tmpdir))               # or mTLS: client certificate required
    env = {"OPENSHELL_ENDPOINT": gw.endpoint, ...}       # "http://127.0.0.1:PORT" / "https://..."
    gw.set_policy({"filesystem": {"read_only": ["/usr"]}, "network_policies": {...}})
    gw.provider_env = {"API_KEY": "secret"}
    ...start the supervisor...
    hello = gw.wait_event("ConnectSupervisor", "hello", timeout=10)
    gw.set_policy({...})                                 # new version and policy_hash
    st = gw.wait_event("ReportPolicyStatus", timeout=15)
    relay = gw.open_relay("tcp", "localhost", 8000)      # RelayOpen on the live session
    relay.wait_result(10)                                # the RelayOpenResult event
    s = socket.create_connection(("127.0.0.1", relay.port))   # bytes go through RelayStream
    gw.stop()

Knobs (attributes, changeable at any time; read on each call):
  session_mode        "accept" | "reject" (SessionRejected{reason}) | "status" (fail the RPC
                      with session_status=(grpc.StatusCode, details))
  heartbeat_interval_secs  sent in SessionAccepted (default 15)
  gateway_heartbeat_secs   GatewayHeartbeat period on the session stream (0 = none; default 0)
  unauthenticated     set of RPC names answered with UNAUTHENTICATED
  stall               set of unary RPC names never answered: the handler waits until the client
                      cancels (deadline) or the gateway stops
  fail                dict RPC name -> (grpc.StatusCode, details) answered with that status
  accepted_tokens     None (accept any bearer) or a set of tokens; other bearers get
                      UNAUTHENTICATED. Issued and refreshed tokens are added to it.
  issue_token, token_ttl_ms   what IssueSandboxToken returns (RefreshSandboxToken returns
                      "refreshed-N"); expires_at_ms = now + token_ttl_ms (0: non-expiring)
  policy / policy_version / policy_hash / failure_mode   GetSandboxConfig's answer; set_policy()
                      sets the policy and bumps version and hash; policy None = unset
  provider_env, provider_env_revision   GetSandboxProviderEnvironment's answer
  provider_bindings   dict key -> {"endpoints": [{"host", "port", "path"}], "identity",
                      "handle"}: the static credentials among provider_env. As OpenShell's
                      gateway: withheld (with their bindings) unless the request claims
                      supports_static_credential_bindings; every other key is listed in
                      non_secret_environment_keys
  SubmitPolicyAnalysis  recorded; answers accepted_chunks = the number of proposals, ids
                      "chunk-N" (gw.analysis_summaries() lists every summary received)
  relay_mode          "echo" | "bridge": what happens with RelayStream bytes when no
                      open_relay() is waiting for that channel (bridge = refuse NOT_FOUND)

Connection count: Gateway(count_connections=True) puts a TCP front on the public port that
bridges each accepted connection to the gRPC server's internal port and records it;
gw.accepted_connections() lists (time, peer) of every one accepted so far.

Events: a list of dicts {"seq", "time", "rpc", "type", "peer", "metadata", "message"} where
type is "call" (a call started), "message" (one inbound message; message is a dict from
json_format with the original field names), "end" (the client half-closed), "sent" (a message
the gateway sent on the session stream). gw.events(), gw.wait_event(rpc, type_or_payload,
pred, timeout). A payload name ("hello", "heartbeat", "relay_open_result") matches a
SupervisorMessage with that payload. With events_path= each event is also appended to that
file as one JSON line.

Subprocess use: `gateway.py [--port N] [--tls-dir DIR] [--events FILE] [--sandbox-id ID]`
prints {"port": N, "endpoint": URL} on stdout, then reads JSON commands on stdin, one per line:
{"cmd": "set_policy", "policy": {...}}, {"cmd": "set", "name": ATTR, "value": V},
{"cmd": "open_relay", "kind": "tcp", "host": H, "port": P} (answers {"port": LOCAL}),
{"cmd": "quit"}. Each answer is one JSON line.

Relay half-close: like OpenShell's gateway, this one cannot end its send side and keep
receiving (gRPC ends a call with its trailers). EOF on the test's socket ends the RelayStream
response (the supervisor then shuts down the target's write side and finishes the relay); the
supervisor's half-close shuts down the write side of the test's socket while bytes keep flowing
towards the supervisor. A test socket that is not read stalls the relay through HTTP/2 flow
control: the request iterator is only pulled while the socket takes bytes.
"""

import hashlib
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent import futures

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTO_DIR = os.path.join(REPO, "session", "proto")
SERVICE = "openshell.v1.OpenShell"
RELAY_CHUNK = 16384

_PB = {}
_PB_LOCK = threading.Lock()


def load_protos(proto_dir=PROTO_DIR):
    """Generate and import openshell_pb2 / sandbox_pb2 once per process: returns (openshell, sandbox)."""
    with _PB_LOCK:
        if "openshell" in _PB:
            return _PB["openshell"], _PB["sandbox"]
        out = tempfile.mkdtemp(prefix="gw-pb2-")
        protos = sorted(f for f in os.listdir(proto_dir) if f.endswith(".proto"))
        subprocess.run(["protoc", "-I", proto_dir, "--python_out=" + out] + protos,
                       cwd=proto_dir, check=True, capture_output=True)
        sys.path.insert(0, out)
        try:
            import openshell_pb2  # noqa: E402
            import sandbox_pb2  # noqa: E402
        finally:
            sys.path.remove(out)
            shutil.rmtree(out, ignore_errors=True)
        _PB["openshell"], _PB["sandbox"] = openshell_pb2, sandbox_pb2
        return openshell_pb2, sandbox_pb2


def to_dict(msg):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def make_policy(d):
    """A SandboxPolicy from a dict with the proto field names (or return a message as is)."""
    _, sb = load_protos()
    if d is None or isinstance(d, sb.SandboxPolicy):
        return d
    return json_format.ParseDict(d, sb.SandboxPolicy())


def make_pki(directory, server_names=("localhost",), server_ips=("127.0.0.1",)):
    """CA, server and client certificates made with openssl, plus an unrelated CA.

    Returns a dict of paths: ca, server_cert, server_key, client_cert, client_key, other_ca,
    other_client_cert, other_client_key (a client signed by other_ca)."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, v) for k, v in {
        "ca": "ca.crt", "ca_key": "ca.key", "server_cert": "server.crt",
        "server_key": "server.key", "client_cert": "client.crt", "client_key": "client.key",
        "other_ca": "other-ca.crt", "other_ca_key": "other-ca.key",
        "other_client_cert": "other-client.crt", "other_client_key": "other-client.key"}.items()}

    def ssl(*args, stdin=None):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, input=stdin)

    for ca, key, cn in (("ca", "ca_key", "test-gateway-ca"), ("other_ca", "other_ca_key", "other-ca")):
        ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p[key], "-out", p[ca], "-days", "2", "-subj", "/CN=" + cn)
    san = ",".join(["DNS:" + n for n in server_names] + ["IP:" + i for i in server_ips])
    ext = os.path.join(directory, "ext.cnf")
    for who, ca, ca_key, usage, extra in (
            ("server", "ca", "ca_key", "serverAuth", "subjectAltName=" + san),
            ("client", "ca", "ca_key", "clientAuth", ""),
            ("other_client", "other_ca", "other_ca_key", "clientAuth", "")):
        csr = os.path.join(directory, who + ".csr")
        with open(ext, "w") as f:
            f.write("extendedKeyUsage=%s\n%s\n" % (usage, extra))
        ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p[who + "_key"], "-out", csr, "-subj", "/CN=" + who)
        ssl("x509", "-req", "-in", csr, "-CA", p[ca], "-CAkey", p[ca_key], "-CAcreateserial",
            "-out", p[who + "_cert"], "-days", "2", "-extfile", ext)
    return p


class Relay:
    """One gateway-initiated relay: RelayOpen sent, waiting for RelayStream, bridged to a local
    TCP listener on 127.0.0.1:port that the test connects to (one connection)."""

    def __init__(self, gw, channel_id):
        self.gw = gw
        self.channel_id = channel_id
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.to_supervisor = 0    # bytes the test sent into the relay
        self.from_supervisor = 0  # bytes the supervisor sent out of the relay
        self.stream_started = threading.Event()
        self.done = threading.Event()

    def wait_result(self, timeout=10.0):
        """The supervisor's RelayOpenResult for this channel (a message dict), or raise."""
        ev = self.gw.wait_event("ConnectSupervisor", "relay_open_result",
                                lambda e: e["message"]["relay_open_result"].get("channel_id") ==
                                self.channel_id, timeout=timeout)
        return ev["message"]["relay_open_result"]

    def close(self):
        try:
            self.listener.close()
        except OSError:
            pass


class _Session:
    def __init__(self, peer):
        self.peer = peer
        self.out = queue.Queue()
        self.hello = None
        self.live = True


class _ConnCounter:
    """A TCP front for the gRPC server that counts the connections it accepts: every accepted
    socket is bridged byte for byte to the server's own (internal) port, so TLS and HTTP/2 pass
    through untouched. accepted() lists (time, peer) of every connection since start."""

    def __init__(self, port, backend_port):
        self.backend_port = backend_port
        self._lock = threading.Lock()
        self._accepted = []
        self._socks = []
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", port))
        self._ls.listen(64)
        self.port = self._ls.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def accepted(self):
        with self._lock:
            return list(self._accepted)

    def _accept_loop(self):
        while not self._stopped:
            try:
                c, peer = self._ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.backend_port), timeout=5)
                b.settimeout(None)
            except OSError:
                c.close()
                continue
            for x in (c, b):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._accepted.append((time.time(), peer))
                self._socks += [c, b]
            threading.Thread(target=self._pump, args=(c, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, c), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for x, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                x.shutdown(how)
            except OSError:
                pass

    def stop(self):
        self._stopped = True
        try:
            self._ls.close()
        except OSError:
            pass
        with self._lock:
            socks, self._socks = self._socks, []
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()


class Gateway:
    def __init__(self, sandbox_id=None, port=0, tls=None, events_path=None, max_workers=64,
                 count_connections=False):
        self.pb, self.sb = load_protos()
        self.sandbox_id = sandbox_id
        self.session_mode = "accept"
        self.session_reason = "rejected by the test gateway"
        self.session_status = (grpc.StatusCode.INVALID_ARGUMENT, "expected SupervisorHello")
        self.heartbeat_interval_secs = 15
        self.gateway_heartbeat_secs = 0
        self.unauthenticated = set()
        self.stall = set()
        self._stopping = threading.Event()
        self.fail = {}
        self.accepted_tokens = None
        self.issue_token = "issued-token"
        self.token_ttl_ms = 3600 * 1000
        self.refresh_count = 0
        self.policy = None
        self.policy_version = 0
        self.policy_hash = ""
        self.failure_mode = ""
        self.settings = {}
        self.config_revision = None  # None: a fingerprint of the policy hash and the settings
        self.sandbox_name = None  # UpdateConfig's name must equal it when set (else NOT_FOUND)
        self.provider_env = {}
        self.provider_env_revision = 1
        self.provider_bindings = {}
        self.relay_mode = "bridge"
        self._events = []
        self._cond = threading.Condition()
        self._events_file = open(events_path, "a") if events_path else None
        self._sessions = []
        self._relays = {}
        self._plain = []
        self._lock = threading.Lock()
        self.tls = tls
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            handlers=[self._handlers()],
            options=[("grpc.so_reuseport", 0),
                     ("grpc.http2.max_ping_strikes", 0),
                     ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
                     ("grpc.keepalive_permit_without_calls", 1)])
        # count_connections: the server listens on an internal port behind a counting front
        # (_ConnCounter) that takes the public one; accepted_connections() reads the count.
        self._counter = None
        public_port = port
        if count_connections:
            port = 0
        addr = "127.0.0.1:%d" % port
        if tls:
            with open(tls["server_key"], "rb") as f:
                key = f.read()
            with open(tls["server_cert"], "rb") as f:
                cert = f.read()
            with open(tls.get("client_ca", tls["ca"]), "rb") as f:
                ca = f.read()
            creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                                require_client_auth=True)
            self.port = self._server.add_secure_port(addr, creds)
            self.endpoint = "https://127.0.0.1:%d" % self.port
        else:
            self.port = self._server.add_insecure_port(addr)
            self.endpoint = "http://127.0.0.1:%d" % self.port
        if not self.port:
            raise RuntimeError("cannot listen on %s" % addr)
        self._server.start()
        if count_connections:
            self._counter = _ConnCounter(public_port, self.port)
            self.port = self._counter.port
            self.endpoint = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)

    def accepted_connections(self):
        """(time, peer) of every TCP connection accepted so far (count_connections=True)."""
        if self._counter is None:
            raise RuntimeError("the gateway was not made with count_connections=True")
        return self._counter.accepted()

    # -- control --------------------------------------------------------------------------------

    def stop(self, grace=0):
        """Stop serving: open calls are cancelled, connections closed."""
        self._stopping.set()
        with self._lock:
            for s in self._sessions:
                s.out.put(None)
            for r in self._relays.values():
                r.close()
            for t in self._plain:
                t.close()
        if self._counter:
            self._counter.stop()
        self._server.stop(grace).wait(5)
        if self._events_file:
            self._events_file.close()
            self._events_file = None

    def set_policy(self, policy, version=None, failure_mode=None):
        """Serve @policy (dict or SandboxPolicy; None = unset) from now on: bumps the version and
        sets policy_hash to the SHA-256 of its serialisation."""
        msg = make_policy(policy)
        with self._lock:
            self.policy = msg
            self.policy_version = version if version is not None else self.policy_version + 1
            data = msg.SerializeToString(deterministic=True) if msg is not None else b""
            self.policy_hash = hashlib.sha256(data).hexdigest() if msg is not None else ""
            if failure_mode is not None:
                self.failure_mode = failure_mode

    def sessions(self):
        with self._lock:
            return [s for s in self._sessions if s.live]

    def end_sessions(self, code=None, details="ended by the test gateway"):
        """End every live ConnectSupervisor stream: status OK (EOF), or @code."""
        with self._lock:
            for s in self._sessions:
                if s.live:
                    s.out.put(("end", code, details))

    def send(self, msg):
        """Queue a GatewayMessage on the newest live session (raises if there is none)."""
        live = self.sessions()
        if not live:
            raise RuntimeError("no live supervisor session")
        live[-1].out.put(msg)

    def open_relay(self, kind="ssh", host=None, port=None, service_id=""):
        """Send RelayOpen (kind "ssh", "tcp", or "none" for no target) on the live session and
        return the Relay whose local listener bridges to the RelayStream."""
        channel_id = str(uuid.uuid4())
        relay = Relay(self, channel_id)
        with self._lock:
            self._relays[channel_id] = relay
        ro = self.pb.RelayOpen(channel_id=channel_id, service_id=service_id)
        if kind == "ssh":
            ro.ssh.SetInParent()
        elif kind == "tcp":
            ro.tcp.host = host or ""
            ro.tcp.port = port or 0
        self.send(self.pb.GatewayMessage(relay_open=ro))
        return relay

    def plain_tcp_relay(self, host, port):
        """A plain TCP forwarder in this process (for benchmarks): returns its local port."""
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind(("127.0.0.1", 0))
        lst.listen(16)
        with self._lock:
            self._plain.append(lst)

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        def serve():
            while True:
                try:
                    c, _ = lst.accept()
                except OSError:
                    return
                u = socket.create_connection((host, port))
                threading.Thread(target=pump, args=(c, u), daemon=True).start()
                threading.Thread(target=pump, args=(u, c), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        return lst.getsockname()[1]

    # -- events ---------------------------------------------------------------------------------

    def _record(self, rpc, typ, context=None, message=None, peer=None, metadata=None):
        ev = {"seq": 0, "time": time.time(), "mono": time.monotonic(), "rpc": rpc, "type": typ,
              "peer": peer if peer is not None else (context.peer() if context else None),
              "metadata": metadata if metadata is not None else (
                  {m.key: m.value for m in context.invocation_metadata()
                   if isinstance(m.value, str)} if context else {}),
              "message": to_dict(message) if message is not None else None}
        with self._cond:
            ev["seq"] = len(self._events)
            self._events.append(ev)
            if self._events_file:
                self._events_file.write(json.dumps(ev) + "\n")
                self._events_file.flush()
            self._cond.notify_all()
        return ev

    @staticmethod
    def _matches(ev, rpc, what, pred):
        if rpc is not None and ev["rpc"] != rpc:
            return False
        if what is not None:
            if what in ("call", "message", "end", "sent"):
                if ev["type"] != what:
                    return False
            elif ev["type"] != "message" or what not in (ev["message"] or {}):
                return False
        return pred is None or bool(pred(ev))

    def events(self, rpc=None, what=None, pred=None):
        with self._cond:
            return [e for e in self._events if self._matches(e, rpc, what, pred)]

    def wait_event(self, rpc=None, what=None, pred=None, timeout=10.0, after=-1):
        """The first event (with seq > @after) matching; raises TimeoutError after @timeout s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self._events:
                    if e["seq"] > after and self._matches(e, rpc, what, pred):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no %s %s event within %.1f s (have: %s)" % (
                        rpc, what, timeout, sorted({(e["rpc"], e["type"]) for e in self._events})))
                self._cond.wait(left)

    def last_seq(self):
        with self._cond:
            return len(self._events) - 1

    # -- the service ----------------------------------------------------------------------------

    def _gate(self, rpc, context):
        """Common checks for every call: configured failures and bearer tokens."""
        if rpc in self.unauthenticated:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated (test gateway)")
        if rpc in self.fail:
            code, details = self.fail[rpc]
            context.abort(code, details)
        if rpc in self.stall:
            while context.is_active() and not self._stopping.wait(0.05):
                pass
            context.abort(grpc.StatusCode.UNAVAILABLE, "stalled (test gateway)")
        if self.accepted_tokens is not None and rpc != "IssueSandboxToken":
            md = {m.key: m.value for m in context.invocation_metadata()}
            auth = md.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.accepted_tokens:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid sandbox token")

    def _unary(self, rpc, fn, req_cls, resp_cls):
        def handler(request, context):
            self._record(rpc, "call", context)
            self._record(rpc, "message", context, request)
            self._gate(rpc, context)
            return fn(request, context)
        return grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)

    def _handlers(self):
        pb, sb = self.pb, self.sb
        return grpc.method_handlers_generic_handler(SERVICE, {
            "GetSandboxConfig": self._unary("GetSandboxConfig", self._get_config,
                                            sb.GetSandboxConfigRequest,
                                            sb.GetSandboxConfigResponse),
            "ReportPolicyStatus": self._unary("ReportPolicyStatus",
                                              lambda r, c: pb.ReportPolicyStatusResponse(),
                                              pb.ReportPolicyStatusRequest,
                                              pb.ReportPolicyStatusResponse),
            "GetSandboxProviderEnvironment": self._unary(
                "GetSandboxProviderEnvironment", self._provider_env,
                pb.GetSandboxProviderEnvironmentRequest, pb.GetSandboxProviderEnvironmentResponse),
            "UpdateConfig": self._unary("UpdateConfig", self._update_config,
                                        pb.UpdateConfigRequest, pb.UpdateConfigResponse),
            "ReportMainProcessExit": self._unary("ReportMainProcessExit",
                                                 lambda r, c: pb.ReportMainProcessExitResponse(),
                                                 pb.ReportMainProcessExitRequest,
                                                 pb.ReportMainProcessExitResponse),
            "IssueSandboxToken": self._unary("IssueSandboxToken", self._issue,
                                             pb.IssueSandboxTokenRequest,
                                             pb.IssueSandboxTokenResponse),
            "RefreshSandboxToken": self._unary("RefreshSandboxToken", self._refresh,
                                               pb.RefreshSandboxTokenRequest,
                                               pb.RefreshSandboxTokenResponse),
            "SubmitPolicyAnalysis": self._unary("SubmitPolicyAnalysis", self._analysis,
                                                pb.SubmitPolicyAnalysisRequest,
                                                pb.SubmitPolicyAnalysisResponse),
            "PushSandboxLogs": grpc.stream_unary_rpc_method_handler(
                self._push_logs, request_deserializer=pb.PushSandboxLogsRequest.FromString,
                response_serializer=pb.PushSandboxLogsResponse.SerializeToString),
            "ConnectSupervisor": grpc.stream_stream_rpc_method_handler(
                self._connect, request_deserializer=pb.SupervisorMessage.FromString,
                response_serializer=pb.GatewayMessage.SerializeToString),
            "RelayStream": grpc.stream_stream_rpc_method_handler(
                self._relay_stream, request_deserializer=pb.RelayFrame.FromString,
                response_serializer=pb.RelayFrame.SerializeToString),
        })

    def _get_config(self, request, context):
        with self._lock:
            resp = self.sb.GetSandboxConfigResponse(
                version=self.policy_version, policy_hash=self.policy_hash,
                config_revision=self._config_revision(),
                provider_env_revision=self.provider_env_revision,
                policy_validation_failure_mode=self.failure_mode)
            if self.policy is not None:
                resp.policy.CopyFrom(self.policy)
            for k, v in self.settings.items():
                if isinstance(v, bool):
                    resp.settings[k].value.bool_value = v
                elif isinstance(v, int):
                    resp.settings[k].value.int_value = v
                else:
                    resp.settings[k].value.string_value = str(v)
        return resp

    def _config_revision(self):
        """OpenShell's config_revision fingerprints the policy and the settings."""
        if self.config_revision is not None:
            return self.config_revision
        data = json.dumps([self.policy_hash, self.settings], sort_keys=True).encode()
        return int(hashlib.sha256(data).hexdigest()[:15], 16)

    def _update_config(self, request, context):
        """A sandbox-scoped policy update (the supervisor's sync): stored as the next version."""
        if self.sandbox_name is not None and request.name != self.sandbox_name:
            context.abort(grpc.StatusCode.NOT_FOUND, "sandbox not found")
        if not request.HasField("policy"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "policy is required")
        self.set_policy(request.policy)
        with self._lock:
            return self.pb.UpdateConfigResponse(version=self.policy_version,
                                                policy_hash=self.policy_hash)
    def _analysis(self, request, context):
        n = len(request.proposed_chunks)
        return self.pb.SubmitPolicyAnalysisResponse(
            accepted_chunks=n, accepted_chunk_ids=["chunk-%d" % i for i in range(n)])

    def analysis_summaries(self):
        """Every DenialSummary submitted so far (dicts), in arrival order."""
        out = []
        for e in self.events("SubmitPolicyAnalysis", "message"):
            out.extend(e["message"].get("summaries", []))
        return out

    def _provider_env(self, request, context):
        resp = self.pb.GetSandboxProviderEnvironmentResponse(
            provider_env_revision=self.provider_env_revision)
        bound = dict(self.provider_bindings)
        claims = request.supports_static_credential_bindings
        for k, v in dict(self.provider_env).items():
            if k in bound and not claims:
                continue  # a bound secret only goes to a supervisor that enforces bindings
            resp.environment[k] = v
            if k not in bound:
                resp.non_secret_environment_keys.append(k)
        for k, b in bound.items() if claims else ():
            scb = resp.static_credential_bindings[k]
            scb.credential_identity = b.get("identity", "")
            scb.workload_credential_handle = b.get("handle", "")
            for e in b.get("endpoints", []):
                scb.endpoints.add(host=e["host"], port=e["port"], path=e.get("path", ""))
        return resp

    def _token_resp(self, cls, token):
        if self.accepted_tokens is not None:
            self.accepted_tokens.add(token)
        exp = int(time.time() * 1000) + self.token_ttl_ms if self.token_ttl_ms else 0
        return cls(token=token, expires_at_ms=exp)

    def _issue(self, request, context):
        return self._token_resp(self.pb.IssueSandboxTokenResponse, self.issue_token)

    def _refresh(self, request, context):
        with self._lock:
            self.refresh_count += 1
            n = self.refresh_count
        return self._token_resp(self.pb.RefreshSandboxTokenResponse, "refreshed-%d" % n)

    def _push_logs(self, request_iterator, context):
        self._record("PushSandboxLogs", "call", context)
        self._gate("PushSandboxLogs", context)
        peer = context.peer()
        for req in request_iterator:
            self._record("PushSandboxLogs", "message", context, req, peer=peer)
        self._record("PushSandboxLogs", "end", context, peer=peer)
        return self.pb.PushSandboxLogsResponse()

    def log_lines(self):
        """Every SandboxLogLine pushed so far, as dicts, in arrival order."""
        out = []
        for e in self.events("PushSandboxLogs", "message"):
            out.extend(e["message"].get("logs", []))
        return out

    def _connect(self, request_iterator, context):
        self._record("ConnectSupervisor", "call", context)
        self._gate("ConnectSupervisor", context)
        peer = context.peer()
        md = {m.key: m.value for m in context.invocation_metadata() if isinstance(m.value, str)}
        try:
            first = next(request_iterator)
        except StopIteration:
            self._record("ConnectSupervisor", "end", peer=peer, metadata=md)
            return
        self._record("ConnectSupervisor", "message", message=first, peer=peer, metadata=md)
        if first.WhichOneof("payload") != "hello":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected SupervisorHello")
        if self.sandbox_id is not None and first.hello.sandbox_id != self.sandbox_id:
            context.abort(grpc.StatusCode.NOT_FOUND, "sandbox not found")
        mode = self.session_mode
        if mode == "status":
            context.abort(*self.session_status)
        if mode == "reject":
            msg = self.pb.GatewayMessage(
                session_rejected=self.pb.SessionRejected(reason=self.session_reason))
            self._record("ConnectSupervisor", "sent", message=msg, peer=peer, metadata=md)
            yield msg
            return
        sess = _Session(peer)
        sess.hello = first.hello
        with self._lock:
            self._sessions.append(sess)

        def reader():
            try:
                for m in request_iterator:
                    self._record("ConnectSupervisor", "message", message=m, peer=peer,
                                 metadata=md)
                self._record("ConnectSupervisor", "end", peer=peer, metadata=md)
            except grpc.RpcError:
                self._record("ConnectSupervisor", "end", peer=peer, metadata=md)
            except Exception:  # cancelled underneath us
                pass
            sess.out.put(None)

        threading.Thread(target=reader, daemon=True).start()
        try:
            accepted = self.pb.GatewayMessage(session_accepted=self.pb.SessionAccepted(
                session_id=str(uuid.uuid4()),
                heartbeat_interval_secs=self.heartbeat_interval_secs))
            self._record("ConnectSupervisor", "sent", message=accepted, peer=peer, metadata=md)
            yield accepted
            next_hb = time.monotonic() + self.gateway_heartbeat_secs
            while context.is_active():
                wait = 0.5
                if self.gateway_heartbeat_secs:
                    wait = max(0.0, min(wait, next_hb - time.monotonic()))
                try:
                    item = sess.out.get(timeout=wait)
                except queue.Empty:
                    if self.gateway_heartbeat_secs and time.monotonic() >= next_hb:
                        next_hb = time.monotonic() + self.gateway_heartbeat_secs
                        yield self.pb.GatewayMessage(heartbeat=self.pb.GatewayHeartbeat())
                    continue
                if item is None:
                    return
                if isinstance(item, tuple):
                    _, code, details = item
                    if code is not None:
                        context.abort(code, details)
                    return
                self._record("ConnectSupervisor", "sent", message=item, peer=peer, metadata=md)
                yield item
        finally:
            sess.live = False

    def _relay_stream(self, request_iterator, context):
        self._record("RelayStream", "call", context)
        self._gate("RelayStream", context)
        peer = context.peer()
        md = {m.key: m.value for m in context.invocation_metadata() if isinstance(m.value, str)}
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        self._record("RelayStream", "message", message=first, peer=peer, metadata=md)
        if first.WhichOneof("payload") != "init":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected RelayInit")
        with self._lock:
            relay = self._relays.get(first.init.channel_id)
        if relay is None:
            if self.relay_mode == "echo":
                for fr in request_iterator:
                    if fr.WhichOneof("payload") == "data" and fr.data:
                        yield self.pb.RelayFrame(data=fr.data)
                return
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown relay channel")
        relay.stream_started.set()
        relay.listener.settimeout(60)
        try:
            conn, _ = relay.listener.accept()
        except OSError:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the test never connected")
        relay.close()
        conn.settimeout(None)

        def inbound():
            try:
                for fr in request_iterator:
                    kind = fr.WhichOneof("payload")
                    if kind != "data":
                        self._record("RelayStream", "message", message=fr, peer=peer,
                                     metadata=md)
                        continue
                    if fr.data:
                        conn.sendall(fr.data)
                        relay.from_supervisor += len(fr.data)
                self._record("RelayStream", "end", peer=peer, metadata=md)
                conn.shutdown(socket.SHUT_WR)
            except (OSError, grpc.RpcError, ValueError):
                pass

        t = threading.Thread(target=inbound, daemon=True)
        t.start()
        try:
            while True:
                try:
                    d = conn.recv(RELAY_CHUNK)
                except OSError:
                    break
                if not d:
                    break
                relay.to_supervisor += len(d)
                yield self.pb.RelayFrame(data=d)
        finally:
            relay.done.set()
            try:
                conn.close()
            except OSError:
                pass


def _serve_cli(argv):
    import argparse
    ap = argparse.ArgumentParser(description="OpenShell test gateway")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-dir", help="make (or reuse) a PKI here and serve mTLS")
    ap.add_argument("--events", help="append every event to this JSON-lines file")
    ap.add_argument("--sandbox-id")
    a = ap.parse_args(argv)
    tls = None
    if a.tls_dir:
        tls = make_pki(a.tls_dir) if not os.path.exists(os.path.join(a.tls_dir, "ca.crt")) else {
            k: os.path.join(a.tls_dir, v) for k, v in {
                "ca": "ca.crt", "server_cert": "server.crt", "server_key": "server.key"}.items()}
    gw = Gateway(sandbox_id=a.sandbox_id, port=a.port, tls=tls, events_path=a.events)
    print(json.dumps({"port": gw.port, "endpoint": gw.endpoint}), flush=True)
    relays = []
    for line in sys.stdin:
        try:
            c = json.loads(line)
            cmd = c.get("cmd")
            if cmd == "quit":
                break
            if cmd == "set_policy":
                gw.set_policy(c.get("policy"), failure_mode=c.get("failure_mode"))
                ans = {"ok": True, "version": gw.policy_version, "hash": gw.policy_hash}
            elif cmd == "set":
                val = c["value"]
                if c["name"] in ("unauthenticated", "stall"):
                    val = set(val)
                setattr(gw, c["name"], val)
                ans = {"ok": True}
            elif cmd == "open_relay":
                r = gw.open_relay(c.get("kind", "ssh"), c.get("host"), c.get("port"))
                relays.append(r)
                ans = {"ok": True, "port": r.port, "channel_id": r.channel_id}
            elif cmd == "end_sessions":
                gw.end_sessions()
                ans = {"ok": True}
            else:
                ans = {"ok": False, "error": "unknown command"}
        except Exception as e:  # a bad command is answered, never fatal
            ans = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(ans), flush=True)
    gw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_serve_cli(sys.argv[1:]))
