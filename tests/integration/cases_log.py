"""Cases: logging outputs. A stderr whose reader stalls never stops PID 1's loop (the proxy keeps
answering, lines are dropped and counted, one line says how many once stderr drains); the daily
file /var/log/openshell.YYYY-MM-DD.log gets the info lines whatever the console level; a missing
/var/log costs one warning and nothing else.
"""

import os
import re
import time

import cases_proxy as cp
import harness as h
from harness import check
from suite import CTX, LOG_RE, OCSF_RE, SUPERVISOR, sv, test

# The agent: denied CONNECTs as fast as answers come (each names a long host, so each denial
# line is long), then one allowed CONNECT to the fake echo server; then it waits for stdin EOF.
STALL_AGENT = r"""
import os, socket, sys, time
proxy = (os.environ.get("HTTPS_PROXY") or os.environ["HTTP_PROXY"]).rstrip("/").rsplit("/", 1)[-1]
phost, pport = proxy.rsplit(":", 1)
label = "a" * 60
long_host = ".".join([label, label, label]) + ".example.com"

def connect(target):
    s = socket.create_connection((phost, int(pport)), timeout=5)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    head = s.recv(4096).split(b"\r\n")[0]
    return s, head

worst = 0.0
for i in range(int(sys.argv[1])):
    t = time.monotonic()
    s, head = connect("h%d.%s:443" % (i, long_host))
    s.close()
    worst = max(worst, time.monotonic() - t)
    if b" 403 " not in head:
        print("unexpected answer %r" % head, flush=True)
        sys.exit(1)
print("denied %s worst=%.3f" % (sys.argv[1], worst), flush=True)
t = time.monotonic()
s, head = connect(sys.argv[2])
s.sendall(b"ping")
echo = s.recv(16)
print("allowed %s echo=%s took=%.3f" % (head.decode(), echo.decode(), time.monotonic() - t),
      flush=True)
sys.stdin.read()
print("bye", flush=True)
"""


@test(kind="host")
def log_stalled_stderr_never_stops_the_proxy_and_drops_are_reported():
    why = cp.fake_internet()
    if why:
        raise h.Fail(why)
    script = os.path.join(cp.STATE["tmp"], "stall_agent.py")
    with open(script, "w") as f:
        f.write(STALL_AGENT)
    os.chmod(script, 0o644)
    py = os.path.realpath("/usr/bin/python3")
    pol = cp.policy("[network.fake]\nendpoint = %s:7000\nbinary = %s\n" % (cp.FAKE_IP, py))
    run = h.Run([SUPERVISOR, "--log-level", "info", "--policy", pol, "--", py, script, "700",
                 "%s:7000" % cp.FAKE_IP], mode="host", extra_env=h.HOST_IDENTITY, stdin="pipe",
                stderr_paused=True).start()
    # Nobody reads the supervisor's stderr: 700 denial lines of ~600 bytes overflow the pipe
    # (64 KiB) and the queue (256 KiB). Before the queue, PID 1 slept in write(2) and the proxy stopped.
    if not run.wait_stdout("allowed", 90):
        res = run.finish(1)
        raise h.Fail("the agent did not get its 700 denials and one allowed CONNECT answered"
                     "\n" + res.describe())
    out = run.out.data().decode()
    m = re.search(r"denied 700 worst=([0-9.]+)", out)
    check(m is not None, "the denials were not all answered 403: %r" % out)
    check(float(m.group(1)) < 1.0, "a denial took %ss with stderr stalled" % m.group(1))
    m = re.search(r"allowed HTTP/1.1 200 \S.* echo=ping took=([0-9.]+)", out)
    check(m is not None, "the allowed CONNECT was not answered: %r" % out)
    check(float(m.group(1)) < 1.0, "the allowed CONNECT took %ss" % m.group(1))
    # The reader comes back: the queue drains and one line tells what was lost.
    run.resume_stderr()
    got = run.wait_stderr("log lines were dropped", 10)
    run.stdin_close()
    res = run.finish(15)
    check(got, "no line reports the dropped log lines", res)
    check(res.rc == 0 and "bye" in res.out, "the agent did not finish cleanly", res)
    reports = [l for l in res.err.splitlines() if "log lines were dropped" in l]
    check(len(reports) == 1, "expected one drop report, got %d" % len(reports), res)
    dropped = int(re.search(r"dropped=(\d+)", reports[0]).group(1))
    denials = [l for l in res.err.splitlines() if "DENIED" in l and ".example.com:443" in l]
    # Every denial is either on stderr or counted (the count may include a few info lines).
    check(dropped > 0 and 700 <= len(denials) + dropped <= 710,
          "%d denial lines and %d dropped do not add up" % (len(denials), dropped), res)
    check(len(denials) < 700, "all 700 denials reached stderr: nothing was dropped?", res)
    # Whole lines only: every line is a log line, or the agent's own (none on stderr here).
    bad = [l for l in res.err.splitlines() if not (LOG_RE.match(l) or OCSF_RE.match(l))]
    check(not bad, "a log line was cut or mangled: %r" % bad[:3], res)


def today_file():
    return CTX.path("/var/log/openshell.%s.log" % time.strftime("%Y-%m-%d", time.gmtime()))


@test()
def log_daily_file_gets_info_lines_whatever_the_console_level():
    path = today_file()
    before = os.path.getsize(path) if os.path.exists(path) else 0
    r = sv(["--log-format", "json", "--", "/bin/sh", "-c", "echo hi"])
    check(r.rc == 0 and r.out == "hi\n", "the run itself failed", r)
    check("Starting sandbox" not in r.err, "info lines on a warn console", r)
    check(os.path.exists(path), "no %s" % path, r)
    check(h.stat_mode(path) == 0o644, "mode %o, not 644" % h.stat_mode(path))
    with open(path, "rb") as f:
        f.seek(before)
        new = f.read().decode()
    lines = new.splitlines()
    check(any(re.search(r" INFO supervisor: Starting sandbox version=", l) for l in lines),
          "no sandbox_starting line in the file:\n" + new[:2000])
    check(any(" INFO supervisor: main process started " in l for l in lines),
          "no main_process_started line in the file:\n" + new[:2000])
    check(any(" INFO supervisor: all processes exited exit_code=0" in l for l in lines),
          "no supervisor_exiting line in the file (the exit flush?):\n" + new[:2000])
    bad = [l for l in lines if not (LOG_RE.match(l) or OCSF_RE.match(l))]
    check(not bad, "lines in the file that are not text log lines: %r" % bad[:3])
    check(not any(" DEBUG " in l for l in lines), "debug lines in the file")
    # OCSF records were logged (landlock_prepared), but the JSONL file is off by default.
    check(any(" OCSF CONFIG:ENABLED " in l for l in lines), "no OCSF line in the file")
    check(not os.path.exists(path.replace("/openshell.", "/openshell-ocsf.")),
          "the OCSF JSONL file exists though ocsf_json_enabled was never set")


@test()
def log_missing_var_log_costs_one_warning_and_nothing_else():
    var_log = CTX.path("/var/log")
    off = var_log + ".off"
    os.rename(var_log, off)
    try:
        r = sv(["--", "/bin/sh", "-c", "echo hi; exit 3"])
    finally:
        os.rename(off, var_log)
    check(r.rc == 3 and r.out == "hi\n", "the run changed without /var/log", r)
    warns = [l for l in r.err.splitlines() if "cannot open the daily log file" in l]
    check(len(warns) == 1, "expected one warning, got %d" % len(warns), r)
    check(" WARN supervisor: " in warns[0] and "/var/log" in warns[0], "warning shape", r)
