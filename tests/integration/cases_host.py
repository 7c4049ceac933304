"""Cases: the supervisor run directly on the host (not PID 1) must still adopt, terminate and reap
everything below it, being a child subreaper.
"""

import os
import signal
import time

import harness as h
from harness import check
from suite import (
    CTX,
    SUPERVISOR,
    host_procs_with_arg,
    kill_leftovers,
    signal_and_time,
    test,
    wait_file_sh,
    write_forker,
)


@test(kind="host")
def not_pid1_setsid_daemon_is_terminated_and_reaped():
    arg = str(1000000 + (os.getpid() * 7919 + int(time.time())) % 8000000)
    try:
        r = h.run_host([SUPERVISOR, "--", "/bin/sh", "-c", "setsid sleep %s & exit 0" % arg],
                       timeout=15)
        left = host_procs_with_arg(arg)
        check(r.rc == 0, "expected exit 0", r)
        check(not left, "sleep %s still running as pids %r" % (arg, left), r)
        check(r.elapsed < 5.0, "took %.2fs" % r.elapsed, r)
    finally:
        kill_leftovers(arg)


@test(kind="host")
def not_pid1_sigterm_shutdown_terminates_setsid_daemon():
    arg = str(2000000 + (os.getpid() * 7919 + int(time.time())) % 8000000)
    try:
        run = h.Run([SUPERVISOR, "--", "/bin/sh", "-c",
                     "setsid sleep %s & echo ready; exec sleep 1002" % arg], mode="host",
                    extra_env=h.HOST_IDENTITY).start()
        r, after = signal_and_time(run, signal.SIGTERM, "ready", timeout=15)
        left = host_procs_with_arg(arg)
        check(r.rc == 143, "expected 143", r)
        check(not left, "setsid'd sleep %s still running as pids %r" % (arg, left), r)
        check(after < 5.0, "took %.2fs after SIGTERM" % after, r)
    finally:
        kill_leftovers(arg)


@test(kind="host")
def not_pid1_forking_setsid_daemons_ignoring_sigterm_are_all_killed():
    arg = str(3000000 + (os.getpid() * 7919 + int(time.time())) % 8000000)
    _, f_host = CTX.unique("host-forker")
    write_forker(f_host)
    script = "setsid /bin/sh %s %s </dev/null >/dev/null 2>&1 & sleep 0.3; exit 0" % (f_host, arg)
    try:
        r = h.run_host([SUPERVISOR, "--grace-period", "1", "--", "/bin/sh", "-c", script], timeout=15)
        time.sleep(0.2)
        left = host_procs_with_arg(arg)
        check(r.rc == 0, "expected exit 0", r)
        check(not left, "processes with %s still running: %r" % (arg, left), r)
        check(1.0 <= r.elapsed < 5.0, "took %.2fs with a 1 s grace period" % r.elapsed, r)
    finally:
        kill_leftovers(f_host)
        kill_leftovers(arg)


@test(kind="host")
def not_pid1_timeout_kills_everything_and_exits_124():
    arg = str(4000000 + (os.getpid() * 7919 + int(time.time())) % 8000000)
    script = """setsid sh -c 'trap "" TERM; exec sleep %s' & exec sleep 100""" % arg
    try:
        r = h.run_host([SUPERVISOR, "--timeout", "1", "--", "/bin/sh", "-c", script], timeout=15)
        left = host_procs_with_arg(arg)
        check(r.rc == 124, "expected 124", r)
        check(not left, "sleep %s survived the timeout: %r" % (arg, left), r)
        check(r.elapsed < 3.0, "took %.2fs for a 1 s timeout" % r.elapsed, r)
    finally:
        kill_leftovers(arg)


@test(kind="host")
def not_pid1_orphans_are_adopted_and_reaped():
    r = h.run_host([SUPERVISOR, "--", CTX.path("/usr/local/bin/orphans"), "20"], timeout=20)
    check(r.rc == 0 and "adopted_by_parent=20 reaped=20" in r.out,
          "supervisor is not a subreaper that reaps its orphans", r)


@test(kind="host")
def not_pid1_daemon_ignoring_sigterm_is_killed_after_grace():
    _, f_host = CTX.unique("host-ignterm")
    ign = CTX.path("/usr/local/bin/ignterm")
    script = "setsid %s %s </dev/null >/dev/null 2>&1 & %s; exit 0" % (ign, f_host, wait_file_sh(f_host))
    try:
        r = h.run_host([SUPERVISOR, "--grace-period", "1", "--", "/bin/sh", "-c", script], timeout=15)
        left = host_procs_with_arg(f_host)
        check(r.rc == 0, "expected exit 0", r)
        check(not left, "ignterm still running as pids %r" % left, r)
        check(1.0 <= r.elapsed < 5.0, "took %.2fs with a 1 s grace period" % r.elapsed, r)
    finally:
        kill_leftovers(f_host)


@test(kind="host")
def not_pid1_unread_stdin_and_gone_stdout_reader_do_not_kill_supervisor():
    r = h.run_host([SUPERVISOR, "--", "/bin/sh", "-c", "exit 4"], stdin=b"x" * (4 << 20), timeout=15)
    check(r.rc == 4, "expected 4 with unread stdin (SIGPIPE on the child's stdin pipe?)", r)
    r = h.run_host([SUPERVISOR, "--", "/bin/sh", "-c", "seq 1 300000; exit 3"], stdout_limit=10,
                   timeout=15)
    check(r.rc == 3, "expected 3 after our stdout reader left (SIGPIPE on stdout?)", r)


@test(kind="host")
def not_pid1_sigterm_forwarded_exit_143():
    run = h.Run([SUPERVISOR, "--", "/bin/sh", "-c", "echo ready; exec sleep 1001"], mode="host",
                extra_env=h.HOST_IDENTITY).start()
    r, _ = signal_and_time(run, signal.SIGTERM, "ready")
    check(r.rc == 143, "expected 143", r)
