#!/usr/bin/python3
"""A real gRPC server (Debian's python3-grpcio) for tests/unit/test_gw_conn.c.

Service test.Echo with raw-bytes methods (a generic handler, no protobuf):
  Unary   -> b"auth=<authorization>;timeout=<yes|no>;" + request
  Bidi    -> echoes every request message, then OK
  Status  -> aborts with NOT_FOUND and a message that needs percent-encoding
  Flood   -> request "<count> <size>": <count> messages of <size> bytes (byte i = i % 251)
  Big     -> one message of 5 MiB (over the client's 4 MiB limit)
  Watch   -> a message every 20 ms until the client goes away (cancel, RST_STREAM)
  Ended   -> how many Watch calls ended, as decimal text
Usage: gw_grpc_server.py [--tls CA CERT KEY | --tls-no-alpn CA CERT KEY]. Listens on 127.0.0.1,
prints the port, and exits when stdin closes (the test holds the other end). --tls-no-alpn is no
gRPC server: an mTLS server (OpenSSL, TLS 1.2 or 1.3) that negotiates no ALPN protocol, then stays idle.
(Not capped at TLS 1.2: a 1.3-capable OpenSSL capped at 1.2 sets RFC 8446's downgrade sentinel,
which a TLS 1.3 client such as mbedTLS 3.6 rightly refuses before ALPN is ever looked at.)
"""
import sys
import threading
import time
from concurrent import futures

import grpc

STATUS_MESSAGE = "no such thing: \u00fc 100%"


def unary(request, context):
    md = dict(context.invocation_metadata())
    remaining = context.time_remaining()
    timeout = "yes" if remaining is not None and remaining < 3600 else "no"
    return b"auth=" + md.get("authorization", "").encode() + b";timeout=" + \
        timeout.encode() + b";" + request


def bidi(request_iterator, context):
    for msg in request_iterator:
        yield msg


def status(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, STATUS_MESSAGE)


def flood(request, context):
    count, size = (int(x) for x in request.split())
    body = bytes(i % 251 for i in range(size))
    for _ in range(count):
        yield body


ENDED = [0]
ENDED_LOCK = threading.Lock()


def watch(request, context):
    def ended():
        with ENDED_LOCK:
            ENDED[0] += 1

    context.add_callback(ended)
    while context.is_active():
        yield b"tick"
        time.sleep(0.02)


def ended_count(request, context):
    with ENDED_LOCK:
        return str(ENDED[0]).encode()


def big(request, context):
    return b"x" * (5 * 1024 * 1024)


def no_alpn(ca, cert, key):
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    print(lsock.getsockname()[1], flush=True)
    held = []

    def serve():
        while True:
            conn, _ = lsock.accept()
            try:
                held.append(ctx.wrap_socket(conn, server_side=True))
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.buffer.read()


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--tls-no-alpn":
        no_alpn(*sys.argv[2:5])
        return
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Status": grpc.unary_unary_rpc_method_handler(status),
        "Flood": grpc.unary_stream_rpc_method_handler(flood),
        "Big": grpc.unary_unary_rpc_method_handler(big),
        "Watch": grpc.unary_stream_rpc_method_handler(watch),
        "Ended": grpc.unary_unary_rpc_method_handler(ended_count),
    }
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64),
        handlers=[grpc.method_handlers_generic_handler("test.Echo", handlers)],
        options=[
            # The client under test pings often: never answer that with GOAWAY.
            ("grpc.http2.min_ping_interval_without_data_ms", 1),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    if len(sys.argv) == 5 and sys.argv[1] == "--tls":
        with open(sys.argv[2], "rb") as f:
            ca = f.read()
        with open(sys.argv[3], "rb") as f:
            cert = f.read()
        with open(sys.argv[4], "rb") as f:
            key = f.read()
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                            require_client_auth=True)
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    done = threading.Event()

    def watch_stdin():
        sys.stdin.buffer.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait()
    server.stop(0)


if __name__ == "__main__":
    main()
