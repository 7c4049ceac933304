"""Cases: PID 1, exit status, signals from the host, shutdown of what remains, --timeout.

Every signal is sent from the host to the supervisor's host pid once the main process said "ready".
"""

import signal

import harness as h
from harness import check
from suite import CTX, read_host, signal_and_time, start, sv, test, wait_file_sh, write_forker


# PID 1 and exit status


def ns_pid_and_cmdline(pid):
    """(innermost namespace pid, argv joined by spaces) of host pid @pid, read from outside:
    the agent's own /proc hides PID 1 (the mount fence's hidepid)."""
    nspid = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                nspid = int(line.split()[-1])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return nspid, f.read().replace(b"\0", b" ").decode()


@test()
def supervisor_is_pid1_and_parent_of_main():
    run = start(["--", "sh", "-c", 'echo "ppid=$PPID"; cat /proc/1/cmdline >/dev/null 2>&1 '
                 '|| echo PID1-HIDDEN; read go'], stdin="pipe")
    nspid, cmdline = ns_pid_and_cmdline(run.host_pid())
    run.stdin_write(b"go\n")
    r = run.finish(10.0)
    check(r.rc == 0, "expected exit 0", r)
    check(nspid == 1 and cmdline.startswith(h.IN_ROOT_SUPERVISOR + " "),
          "PID 1 is not the supervisor: %r %r" % (nspid, cmdline), r)
    check("ppid=1" in r.out.splitlines(), "main's parent is not PID 1", r)
    check("PID1-HIDDEN" in r.out, "the agent can read PID 1's /proc entry", r)


@test()
def exit_code_0_propagates():
    r = sv(["--", "sh", "-c", "exit 0"])
    check(r.rc == 0, "expected exit 0", r)


@test()
def exit_code_7_propagates():
    r = sv(["--", "sh", "-c", "exit 7"])
    check(r.rc == 7, "expected exit 7", r)


@test()
def exit_codes_1_2_124_to_128_and_255_propagate():
    for code in (1, 2, 124, 125, 126, 127, 128, 255):
        r = sv(["--", "sh", "-c", "exit %d" % code])
        check(r.rc == code, "expected exit %d" % code, r)


@test()
def main_killed_by_sigkill_exits_137():
    r = sv(["--", "sh", "-c", "kill -KILL $$"])
    check(r.rc == 137, "expected 128+9", r)


@test()
def main_killed_by_sigsegv_exits_139():
    r = sv(["--", "sh", "-c", "kill -SEGV $$"])
    check(r.rc == 139, "expected 128+11", r)


# ---------------------------------------------------------------------------------------------------
# Signals sent from the host to the supervisor


@test()
def sigterm_reaches_main_group_and_exit_is_143():
    run = start(["--", "sh", "-c", "echo ready; exec sleep 1000"])
    r, after = signal_and_time(run, signal.SIGTERM, "ready")
    check(r.rc == 143, "expected 128+15 from the main sleep", r)
    check(after < 3.0, "exit took %.2fs after SIGTERM" % after, r)


@test()
def sigterm_reaches_every_process_of_main_group():
    script = 'trap "" TERM; sigrecv TERM & wait $!; echo "main-after-wait=$?"; exit 3'
    run = start(["--", "sh", "-c", script])
    r, _ = signal_and_time(run, signal.SIGTERM, "ready")
    check("got TERM" in r.out, "the main's background child did not get SIGTERM", r)
    check("main-after-wait=115" in r.out, "main shell did not outlive the TERM it ignores", r)
    check(r.rc == 3, "expected the main's own exit code 3", r)


def forwarded(sig):
    run = start(["--", "sigrecv", sig.name[3:]])
    r, _ = signal_and_time(run, sig, "ready")
    check("got %s from=1" % sig.name[3:] in r.out, "main did not get %s from PID 1" % sig.name, r)
    check(r.rc == 100 + sig.value, "expected sigrecv's exit %d" % (100 + sig.value), r)


@test()
def sigint_is_forwarded_to_main():
    forwarded(signal.SIGINT)


@test()
def sighup_is_forwarded_to_main():
    forwarded(signal.SIGHUP)


@test()
def sigquit_is_forwarded_to_main():
    forwarded(signal.SIGQUIT)


@test()
def sigusr1_is_forwarded_to_main():
    forwarded(signal.SIGUSR1)


@test()
def sigusr2_is_forwarded_to_main():
    forwarded(signal.SIGUSR2)


@test()
def sigusr1_is_forwarded_even_if_supervisor_started_with_it_ignored():
    run = start(["--", "sigrecv", "USR1"], prefix=["/usr/local/bin/execwith", "-i", "USR1", "--"])
    r, _ = signal_and_time(run, signal.SIGUSR1, "ready")
    check("got USR1 from=1" in r.out, "main did not get SIGUSR1", r)


@test()
def main_ignoring_sigterm_is_killed_after_grace_period_137():
    run = start(["--grace-period", "1", "--", "ignterm"])
    r, after = signal_and_time(run, signal.SIGTERM, "ready")
    check(r.rc == 137, "expected 128+9 after the grace period", r)
    check(after >= 1.0, "SIGKILL came %.2fs after SIGTERM, before the 1 s grace period" % after, r)
    check(after < 4.0, "took %.2fs after SIGTERM with a 1 s grace period" % after, r)


@test()
def default_grace_period_is_10s():
    run = start(["--", "ignterm"])
    r, after = signal_and_time(run, signal.SIGTERM, "ready", timeout=20.0)
    check(r.rc == 137, "expected 128+9 after the grace period", r)
    check(9.9 <= after < 13.0, "SIGKILL came %.2fs after SIGTERM, expected ~10 s" % after, r)


@test()
def slow_main_shutdown_within_grace_keeps_its_exit_code():
    run = start(["--grace-period", "5", "--", "sigrecv", "-d", "500", "TERM"])
    r, after = signal_and_time(run, signal.SIGTERM, "ready")
    check("done" in r.out, "main was cut short during its shutdown", r)
    check(r.rc == 115, "expected the main's own exit code 115", r)
    check(0.5 <= after < 3.0, "exit %.2fs after SIGTERM" % after, r)


@test()
def sigterm_is_blocked_at_start_still_forwarded():
    run = start(["--", "sh", "-c", "echo ready; exec sleep 1000"],
                prefix=["/usr/local/bin/execwith", "-b", "TERM", "--"])
    r, _ = signal_and_time(run, signal.SIGTERM, "ready")
    check(r.rc == 143, "expected 143", r)


# ---------------------------------------------------------------------------------------------------
# What remains after the main process exits


@test()
def setsid_daemon_gets_sigterm_and_finishes_before_supervisor_exits():
    f_in, f_host = CTX.unique("daemon")
    script = ("setsid sigrecv -o %s -d 500 TERM </dev/null >/dev/null 2>&1 & %s; exit 0"
              % (f_in, wait_file_sh(f_in)))
    r = sv(["--", "sh", "-c", script], timeout=15)
    log = read_host(f_host)
    check(r.rc == 0, "expected the main's exit code 0", r)
    check("got TERM" in log, "daemon never got SIGTERM (log %r)" % log, r)
    check("done" in log, "supervisor exited before the daemon finished its shutdown (log %r)" % log, r)
    check(r.elapsed < 5.0, "took %.2fs: waited for the grace period instead of the daemon" % r.elapsed, r)


@test()
def daemon_holding_main_stdout_does_not_keep_supervisor_alive():
    f_in, f_host = CTX.unique("daemon-stdout")
    script = "setsid sigrecv -o %s TERM & %s; echo main-done" % (f_in, wait_file_sh(f_in))
    r = sv(["--", "sh", "-c", script], timeout=15)
    check(r.rc == 0, "expected exit 0", r)
    check("main-done" in r.out, "main's output lost", r)
    check("got TERM" in read_host(f_host), "daemon never got SIGTERM", r)
    check(r.elapsed < 5.0, "took %.2fs" % r.elapsed, r)


@test()
def setsid_daemon_ignoring_sigterm_is_killed_after_grace():
    f_in, _ = CTX.unique("ignterm")
    script = "setsid ignterm %s </dev/null >/dev/null 2>&1 & %s; exit 4" % (f_in, wait_file_sh(f_in))
    r = sv(["--grace-period", "1", "--", "sh", "-c", script], timeout=15)
    check(r.rc == 4, "expected the main's exit code 4", r)
    check(r.elapsed >= 1.0, "exited after %.2fs, before the 1 s grace period" % r.elapsed, r)
    check(r.elapsed < 5.0, "took %.2fs with a 1 s grace period" % r.elapsed, r)


@test()
def sigterm_shutdown_also_terminates_setsid_daemon():
    f_in, f_host = CTX.unique("daemon-term")
    script = ("setsid sigrecv -o %s -d 300 TERM </dev/null >/dev/null 2>&1 & %s; echo ready; "
              "exec sleep 1000" % (f_in, wait_file_sh(f_in)))
    run = start(["--", "sh", "-c", script])
    r, after = signal_and_time(run, signal.SIGTERM, "ready", timeout=15)
    log = read_host(f_host)
    check(r.rc == 143, "expected 143 from the main sleep", r)
    check("got TERM" in log, "setsid daemon never got SIGTERM (log %r)" % log, r)
    check("done" in log, "supervisor exited before the daemon finished (log %r)" % log, r)
    check(after < 5.0, "took %.2fs after SIGTERM" % after, r)


@test()
def forking_daemon_ignoring_sigterm_does_not_keep_supervisor_alive():
    f_in, f_host = CTX.unique("forker")
    write_forker(f_host)
    script = "setsid sh %s 4242 </dev/null >/dev/null 2>&1 & sleep 0.3; exit 0" % f_in
    r = sv(["--grace-period", "1", "--", "sh", "-c", script], timeout=15)
    check(r.rc == 0, "expected the main's exit 0", r)
    check(1.0 <= r.elapsed < 5.0, "took %.2fs with a 1 s grace period" % r.elapsed, r)


@test()
def fifty_orphans_are_adopted_and_reaped():
    r = sv(["--", "orphans", "50"], timeout=20)
    check(r.rc == 0, "orphans check failed", r)
    check("adopted_by_parent=50 reaped=50" in r.out, "not all orphans adopted and reaped", r)


@test()
def no_zombie_left_after_fifty_orphans_exit():
    r = sv(["--", "sh", "-c", "orphans 50 >/dev/null; sleep 0.3; zombies"], timeout=20)
    check("zombies=0" in r.out, "zombies in /proc", r)
    check(r.rc == 0, "expected exit 0", r)


# ---------------------------------------------------------------------------------------------------
# --timeout


@test()
def timeout_expiry_exits_124():
    r = sv(["--timeout", "1", "--", "sleep", "100"])
    check(r.rc == 124, "expected 124", r)
    check(0.9 <= r.elapsed < 3.0, "took %.2fs for a 1 s timeout" % r.elapsed, r)


@test()
def timeout_sigkills_main_ignoring_sigterm_after_100ms_exits_124():
    r = sv(["--timeout", "1", "--", "ignterm"])
    check(r.rc == 124, "expected 124", r)
    check(r.elapsed < 3.0, "took %.2fs: waited for the grace period?" % r.elapsed, r)


@test()
def timeout_0_means_no_timeout():
    r = sv(["--timeout", "0", "--", "sh", "-c", "sleep 1.1; exit 5"])
    check(r.rc == 5, "expected the main's exit 5", r)


@test()
def timeout_not_reached_keeps_main_exit_code():
    r = sv(["--timeout", "5", "--", "sh", "-c", "exit 3"])
    check(r.rc == 3, "expected 3", r)
    check(r.elapsed < 3.0, "took %.2fs" % r.elapsed, r)
