"""Cases: PTY or pipes, the child's streams, the supervisor's logs, and the child's start state
(signal mask, dispositions, fds, environment).
"""

import json
import os
import re
import signal

import harness as h
from harness import check
from suite import (
    LOG_RE,
    OCSF_RE,
    SPEC,
    TIME_RE,
    documented_events,
    levels,
    log_lines,
    signal_and_time,
    spec,
    start,
    sv,
    test,
)


# Terminal or pipes


@test()
def spec_tty_true_main_is_session_leader_with_controlling_pty():
    r = sv([], extra_env={SPEC: spec(["ctty"], tty=True)})
    check("ctty=yes" in r.out, "main has no controlling terminal", r)
    check(r.rc == 0, "expected exit 0", r)


@test()
def spec_tty_false_main_has_no_controlling_terminal():
    r = sv([], extra_env={SPEC: spec(["ctty"], tty=False)})
    check("ctty=no" in r.out and "dev_tty=ok" not in r.out, "main has a terminal", r)
    check(r.rc == 1, "expected ctty's exit 1", r)


@test()
def interactive_flag_gives_explicit_argv_a_pty():
    r = sv(["-i", "--", "ctty"])
    check("ctty=yes" in r.out and r.rc == 0, "-i did not give a controlling PTY", r)


@test()
def explicit_argv_without_interactive_has_no_terminal():
    r = sv(["--", "ctty"])
    check("ctty=no" in r.out and r.rc == 1, "main has a terminal without -i", r)


@test()
def pty_output_reaches_stdout_and_exit_code_propagates():
    r = sv([], extra_env={SPEC: spec(["sh", "-c", "echo pty-line; exit 6"], tty=True)})
    check("pty-line" in r.out, "PTY output not copied to stdout", r)
    check(r.rc == 6, "expected exit 6", r)


@test()
def sigterm_reaches_pty_main_and_exit_is_143():
    run = start([], extra_env={SPEC: spec(["sh", "-c", "echo ready; exec sleep 1000"], tty=True)})
    r, after = signal_and_time(run, signal.SIGTERM, "ready")
    check(r.rc == 143, "expected 143 from the PTY main's sleep", r)
    check(after < 3.0, "took %.2fs after SIGTERM" % after, r)


@test()
def pipe_mode_stdio_are_pipes():
    r = sv(["--", "fdcheck"], stdin=b"")
    check("fd0=fifo fd1=fifo fd2=fifo" in r.out, "main's stdio are not pipes", r)


# ---------------------------------------------------------------------------------------------------
# Streams and logs


@test()
def child_streams_go_to_matching_streams_and_logs_never_to_stdout():
    r = sv(["--log-level", "debug", "--", "sh", "-c", "echo to-out; echo to-err >&2"])
    check(r.rc == 0, "expected exit 0", r)
    check(r.out == "to-out\n", "stdout is not exactly the child's stdout", r)
    check("to-err" in r.err, "child's stderr not on stderr", r)
    check(len(log_lines(r.err)) >= 1, "no log line on stderr at debug level", r)


@test()
def log_lines_are_rfc3339_ms_utc_level_component():
    r = sv(["--log-level", "trace", "--", "true"])
    bad = [l for l in r.err.splitlines() if not (LOG_RE.match(l) or OCSF_RE.match(l))]
    check(r.rc == 0, "expected exit 0", r)
    check(r.err.strip() != "", "no log output at trace level", r)
    check(not bad, "malformed log lines: %r" % bad[:5], r)


@test()
def json_log_lines_have_time_level_msg_event_component():
    r = sv(["--log-format", "json", "--log-level", "debug", "--", "true"])
    check(r.rc == 0, "expected exit 0", r)
    lines = [l for l in r.err.splitlines() if l.strip()]
    check(lines, "no JSON log lines at debug level", r)
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise h.Fail("not JSON: %r\n%s" % (line, r.describe()))
        missing = [k for k in ("time", "level", "msg", "event", "component") if k not in obj]
        check(not missing, "JSON line lacks %s: %r" % (missing, line), r)
        check(re.fullmatch(r"[a-z][a-z0-9_]*", obj["event"]) is not None,
              "event is not snake_case: %r" % line, r)
        check(re.fullmatch(TIME_RE, obj["time"]) is not None,
              "time is not RFC 3339 UTC with ms: %r" % line, r)
        catalogue = documented_events()
        check(not catalogue or obj["event"] in catalogue,
              "event %r is not in the docs/usage.md catalogue" % obj["event"], r)


@test()
@test()
def default_log_level_is_warn():
    r = sv(["--", "true"])
    check(r.rc == 0, "expected exit 0", r)
    noisy = [lv for lv in levels(r.err) if lv in ("INFO", "DEBUG", "TRACE")]
    check(not noisy, "INFO/DEBUG lines at the default level", r)


@test()
def openshell_log_level_env_sets_level_like_the_flag():
    cmd = ["--", "sh", "-c", "sleep 0.1 & exit 0"]
    flag = sv(["--log-level", "debug"] + cmd)
    env = sv(cmd, extra_env={"OPENSHELL_LOG_LEVEL": "debug"})
    check("DEBUG" in levels(flag.err), "no DEBUG line even with --log-level debug", flag)
    check(sorted(set(levels(env.err))) == sorted(set(levels(flag.err))),
          "OPENSHELL_LOG_LEVEL=debug logs other levels than --log-level debug", env)


@test()
def log_level_flag_beats_env():
    r = sv(["--log-level", "error", "--", "true"], extra_env={"OPENSHELL_LOG_LEVEL": "debug"})
    check(r.rc == 0, "expected exit 0", r)
    check(not levels(r.err), "lines below error with --log-level error", r)


@test()
def rust_log_plain_level_overrides_log_level():
    r = sv(["--log-level", "error", "--", "true"], extra_env={"RUST_LOG": "info"})
    check("INFO" in levels(r.err), "RUST_LOG=info did not override --log-level error", r)


@test()
def large_child_output_is_drained_byte_exact():
    r = sv(["--", "seq", "1", "100000"], timeout=20)
    want = "".join("%d\n" % i for i in range(1, 100001))
    check(r.rc == 0, "expected exit 0", r)
    check(r.out == want, "stdout differs (%d bytes, want %d)" % (len(r.out), len(want)), r)


@test()
def stdin_pipe_is_forwarded_and_eof_passed():
    r = sv(["--", "cat"], stdin=b"hello\nworld\n")
    check(r.rc == 0 and r.out == "hello\nworld\n", "stdin not forwarded or EOF not passed", r)


@test()
def pty_stdin_end_reaches_the_main_as_terminal_eof():
    # Without the VEOF character the shell would wait for more input until the timeout.
    r = sv(["-i", "--", "sh"], stdin=b"echo from-pty-stdin\n", timeout=5.0)
    check(r.rc == 0 and "from-pty-stdin" in r.out, "PTY shell did not see end of input", r)


@test()
def stdin_1mib_roundtrip_is_byte_exact():
    data = os.urandom(1 << 20)
    r = sv(["--", "cat"], stdin=data, timeout=20)
    check(r.rc == 0, "expected exit 0", r)
    check(r.out_bytes == data, "got %d bytes back, sent %d" % (len(r.out_bytes), len(data)), r)


@test()
def devnull_stdin_still_gives_child_a_pipe():
    r = sv(["--", "fdcheck"])
    check(r.rc == 0 and "fd0=fifo" in r.out, "main's stdin is not the supervisor's pipe", r)


@test()
def unread_stdin_neither_blocks_nor_kills_supervisor():
    r = sv(["--", "sh", "-c", "exit 4"], stdin=b"x" * (4 << 20), timeout=15)
    check(r.rc == 4, "expected the main's exit 4", r)


@test()
def stdout_reader_going_away_does_not_kill_supervisor():
    r = sv(["--", "sh", "-c", "seq 1 300000; exit 3"], stdout_limit=10, timeout=15)
    check(r.rc == 3, "expected the main's exit 3 after our stdout reader left", r)


@test()
def pty_output_is_fully_drained_after_main_exits():
    r = sv([], extra_env={SPEC: spec(["seq", "1", "20000"], tty=True)}, timeout=20)
    want = "".join("%d\n" % i for i in range(1, 20001))
    got = r.out.replace("\r\n", "\n")
    check(r.rc == 0, "expected exit 0", r)
    check(got == want, "PTY output lost or mangled (%d bytes, want %d)" % (len(got), len(want)), r)


# ---------------------------------------------------------------------------------------------------
# Hygiene of the child's start state


HOSTILE = ["/usr/local/bin/execwith", "-i", "USR1", "-i", "PIPE", "-b", "TERM", "-b", "INT", "--"]


@test()
def child_signal_mask_and_ignored_dispositions_are_reset():
    r = sv(["--", "sigdump"], prefix=HOSTILE)
    check(r.rc == 0, "child inherited a blocked or ignored signal", r)


@test()
def pty_child_signal_mask_and_ignored_dispositions_are_reset():
    r = sv([], prefix=HOSTILE, extra_env={SPEC: spec(["sigdump"], tty=True)})
    check(r.rc == 0, "PTY child inherited a blocked or ignored signal", r)


@test()
def no_fd_above_2_leaks_into_child():
    r = sv(["--", "fdcheck"], prefix=["/usr/local/bin/execwith", "-f", "7", "-f", "12", "--"])
    check(r.rc == 0 and "leaked=0" in r.out, "fds leaked into the main process", r)


@test()
def no_fd_above_2_leaks_into_pty_child():
    r = sv([], prefix=["/usr/local/bin/execwith", "-f", "9", "--"],
           extra_env={SPEC: spec(["fdcheck"], tty=True)})
    check(r.rc == 0 and "leaked=0" in r.out, "fds leaked into the PTY main process", r)
