"""Write the seed corpus of fuzz_px_ipc (tests/fuzz/corpus/fuzz_px_ipc): one valid datagram of
each message the proxy process and PID 1 exchange, identity answers with and without a creator
(issue 17 item 1). Run from the repository root: python3 tests/fuzz/px_ipc_seeds.py
"""

import os
import struct

OUT = "tests/fuzz/corpus/fuzz_px_ipc"
START, POLICY, READY, LOG, IDENT_REQ, IDENT_RESP = 1, 2, 3, 4, 5, 6


def msg(kind, payload):
    return struct.pack("<HHI", kind, 0, len(payload)) + payload


def txt(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b + b"\0"


def resp(seq, st, pid, reason, exe, anc, cst=0, cflags=0, cpid=0, cexe="", canc=()):
    p = struct.pack("<IBBHI", seq, st, 0, len(anc), pid)
    p += struct.pack("<BBHI", cst, cflags, len(canc), cpid)
    p += txt(reason) + txt(exe) + txt(cexe)
    for a in list(anc) + list(canc):
        p += txt(a)
    return msg(IDENT_RESP, p)


SEEDS = {
    "ident_resp_creator_found": resp(7, 2, 42, "", "/usr/local/bin/holdfd", ["/bin/sh"], 2, 0,
                                     41, "/usr/local/bin/borrow", ["/bin/sh", "/sbin/init"]),
    "ident_resp_creator_too_long": resp(8, 2, 42, "", "/usr/bin/curl", [], 2, 1, 40,
                                        "/usr/bin/curl"),
    "ident_resp_creator_missing": resp(9, 2, 42, "", "/usr/bin/curl", ["/bin/sh"]),
    "ident_resp_creator_unavailable": resp(10, 2, 42, "", "/usr/bin/curl", [], 1),
    "ident_resp_denied_tofu": resp(11, 1, 42, "binary integrity check failed", "/usr/bin/curl",
                                   [], 2, 2, 42, "/usr/bin/curl", ["/bin/sh"]),
    "ident_resp_not_spawned": resp(12, 0, 0, "entrypoint process not yet spawned", "", []),
    "ident_req_v4": msg(IDENT_REQ, struct.pack("<IHHHH", 3, 2, 40000, 3128, 0) +
                        bytes([10, 200, 0, 2] + [0] * 12 + [10, 200, 0, 1] + [0] * 12)),
    "ready": msg(READY, b""),
    "policy": msg(POLICY, struct.pack("<Q", 4096)),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
