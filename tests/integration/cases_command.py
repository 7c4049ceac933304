"""Cases: choosing the main command (argv, spec, legacy, default shell), spec and exec errors,
flags and copy-self.
"""

import json
import os
import re
import shutil
import signal

import harness as h
from harness import check
from suite import (
    CTX,
    LEGACY,
    SPEC,
    b64url,
    files_equal,
    levels,
    signal_and_time,
    spec,
    start,
    sv,
    test,
)


# Choosing the main command


@test()
def spec_json_runs_command_with_argv_boundaries():
    r = sv([], extra_env={SPEC: spec(["argv", "a b", "$HOME", ";"])})
    check(r.rc == 0, "expected exit 0", r)
    check("[a b]\n[$HOME]\n[;]\n" in r.out, "argv boundaries not kept", r)


@test()
def spec_unknown_fields_are_ignored():
    value = json.dumps({"version": 1, "command": ["argv", "u"], "tty": False, "future": {"x": [1]}})
    r = sv([], extra_env={SPEC: value})
    check(r.rc == 0 and "[u]" in r.out, "unknown spec field was not ignored", r)


@test()
def spec_base64url_unpadded_runs_command():
    for pad in range(6):
        raw = spec(["argv", "~~~???" + "a" * pad])
        enc = b64url(raw)
        if "-" in enc and "_" in enc and len(raw) % 3 != 0:
            break
    r = sv([], extra_env={SPEC: enc})
    check(r.rc == 0, "expected exit 0 for %s" % enc, r)
    check("[~~~???" in r.out, "command from base64url spec did not run", r)


@test()
def legacy_command_is_split_on_whitespace_without_a_shell():
    r = sv([], extra_env={LEGACY: " argv  a\tb $HOME ; "})
    check(r.rc == 0, "expected exit 0", r)
    check(r.out.endswith("[a]\n[b]\n[$HOME]\n[;]\n"), "legacy command not split as expected", r)


@test()
def argv_after_double_dash_runs():
    r = sv(["--", "argv", "x"])
    check(r.rc == 0 and r.out.endswith("[x]\n"), "explicit argv did not run", r)


@test()
def argv_without_double_dash_keeps_its_own_flags():
    r = sv(["argv", "-x", "--y"])
    check(r.rc == 0, "expected exit 0", r)
    check(r.out.endswith("[-x]\n[--y]\n"), "flags after the command were not passed to it", r)


@test()
def empty_spec_env_is_absent_and_legacy_runs():
    r = sv([], extra_env={SPEC: "", LEGACY: "argv from-legacy"})
    check(r.rc == 0 and "[from-legacy]" in r.out, "empty spec was not treated as absent", r)


@test()
def empty_spec_and_legacy_env_fall_back_to_default_shell():
    r = sv([], extra_env={SPEC: "", LEGACY: "", "PROFILE_PROBE": "5"})
    check(r.rc == 5, "default login shell did not run /etc/profile", r)
    check("profile-probe" in r.out, "default login shell did not run /etc/profile", r)


@test()
def argv_beats_spec_and_legacy():
    r = sv(["--", "argv", "from-argv"],
           extra_env={SPEC: spec(["argv", "from-spec"]), LEGACY: "argv from-legacy"})
    check(r.rc == 0 and "[from-argv]" in r.out, "argv did not win", r)
    check("from-spec" not in r.out and "from-legacy" not in r.out, "more than one command ran", r)


@test()
def spec_beats_legacy():
    r = sv([], extra_env={SPEC: spec(["argv", "from-spec"]), LEGACY: "argv from-legacy"})
    check(r.rc == 0 and "[from-spec]" in r.out, "spec did not win", r)
    check("from-legacy" not in r.out, "legacy ran too", r)


@test()
def default_command_is_login_sh_on_pty_when_image_has_no_bash():
    r = sv([], extra_env={"PROFILE_PROBE": "5"})
    check(r.rc == 5, "expected /etc/profile's exit 5", r)
    check("profile-probe" in r.out, "no login shell ran", r)
    check(re.search(r"tty=/dev/pts/\d+", r.out) is not None, "default shell is not on a PTY", r)
    check("/bin/sh" in r.err and "WARN" in levels(r.err),
          "fallback to /bin/sh was not logged at the default level", r)


@test()
def default_shell_reads_stdin_through_pty():
    run = start([], stdin="pipe")
    run.stdin_write(b"echo $((40+2))mark; exit 5\n")
    r = run.finish(10)
    check("42mark" in r.out, "shell on the PTY did not get the supervisor's stdin", r)
    check(r.rc == 5, "expected exit 5", r)


@test()
def main_env_drops_secrets_and_sets_openshell_sandbox_and_term_dumb():
    secrets = {"OPENSHELL_SANDBOX_TOKEN": "tok-s3cret", "OPENSHELL_TLS_KEY": "/k.pem",
               "OPENSHELL_SANDBOX_TOKEN_FILE": "/t", "OPENSHELL_K8S_SA_TOKEN_FILE": "/sa"}
    r = sv(["--", "env"], extra_env=dict(secrets, KEEP_ME="1"))
    lines = r.out.splitlines()
    check(r.rc == 0, "expected exit 0", r)
    check("KEEP_ME=1" in lines, "ordinary variable lost", r)
    leaked = [k for k in secrets if any(l.startswith(k + "=") for l in lines)]
    check(not leaked, "secrets reached the main process: %r" % leaked, r)
    check("tok-s3cret" not in r.err, "a secret value was logged", r)
    check("OPENSHELL_SANDBOX=1" in lines and "TERM=dumb" in lines, "OPENSHELL_SANDBOX/TERM unset", r)


@test()
def pty_main_env_has_term_xterm_256color():
    r = sv(["-i", "--", "env"])
    check("TERM=xterm-256color" in r.out.replace("\r", "").splitlines(), "TERM on the PTY", r)


# ---------------------------------------------------------------------------------------------------
# Spec and exec errors


def spec_error(value, needle=SPEC):
    r = sv(["--log-level", "error"], extra_env={SPEC: value})
    check(r.rc == 1, "expected exit 1", r)
    check(needle in r.err, "stderr does not say %r" % needle, r)
    check(r.out == "", "stdout must stay empty", r)


@test()
def spec_bad_json_exits_1_naming_the_variable():
    spec_error('{"version":1,"command":["true"],')


@test()
def spec_version_2_exits_1_unsupported():
    spec_error(spec(["true"], version=2), "unsupported OPENSHELL_MAIN_PROCESS_SPEC version 2")


@test()
def spec_empty_command_exits_1():
    spec_error(spec([]))


@test()
def spec_empty_program_name_exits_1():
    spec_error(spec([""]))


@test()
def spec_missing_tty_field_exits_1():
    spec_error(json.dumps({"version": 1, "command": ["true"]}))


@test()
def spec_bad_base64url_exits_1():
    spec_error("base64url:@@not*base64!!")


@test()
def spec_base64url_of_bad_json_exits_1():
    spec_error(b64url('{"version":1,'))


@test()
def command_not_found_exits_127_naming_path():
    r = sv(["--", "/nonexistent/prog"])
    check(r.rc == 127, "expected 127", r)
    check("/nonexistent/prog" in r.err, "stderr does not name the path", r)


@test()
def command_not_in_path_exits_127_naming_it():
    r = sv(["--", "no-such-command-xyz"])
    check(r.rc == 127, "expected 127", r)
    check("no-such-command-xyz" in r.err, "stderr does not name the command", r)


@test()
def spec_command_not_found_exits_127():
    r = sv([], extra_env={SPEC: spec(["/nonexistent/spec-prog"])})
    check(r.rc == 127 and "/nonexistent/spec-prog" in r.err, "expected 127 naming the path", r)


@test()
def command_string_is_never_run_through_a_shell():
    r = sv(["--", "exit 3"])
    check(r.rc == 127, "a command with a space ran through a shell (or was not 127)", r)


@test()
def file_without_exec_bit_exits_126_naming_path():
    with open(CTX.path("/sandbox/noexec.sh"), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(CTX.path("/sandbox/noexec.sh"), 0o644)
    r = sv(["--", "/sandbox/noexec.sh"])
    check(r.rc == 126, "expected 126", r)
    check("/sandbox/noexec.sh" in r.err, "stderr does not name the path", r)


@test()
def directory_as_command_exits_126_naming_path():
    r = sv(["--", "/sandbox"])
    check(r.rc == 126, "expected 126", r)
    check("/sandbox" in r.err, "stderr does not name the path", r)


# ---------------------------------------------------------------------------------------------------
# Flags


@test()
def version_prints_name_and_version_on_stdout():
    r = sv(["--version"])
    check(r.rc == 0, "expected exit 0", r)
    check(re.fullmatch(r"openshell-sandbox \S+\n", r.out) is not None, "unexpected --version output", r)


@test()
def unknown_flag_exits_2_and_runs_nothing():
    r = sv(["--bogus-flag", "--", "sh", "-c", "echo RAN"])
    check(r.rc == 2, "expected exit 2", r)
    check("RAN" not in r.out, "command ran despite the bad flag", r)


def unsupported(flag_args, name):
    r = sv(flag_args + ["--", "sh", "-c", "echo RAN"])
    check(r.rc == 0 and "RAN" in r.out, "command did not run with %s" % name, r)
    hits = [l for l in r.err.splitlines() if "unsupported" in l and name in l]
    check(hits, "no stderr line saying %s is unsupported" % name, r)
    check(any(" WARN " in l or '"warn"' in l for l in hits), "not logged at warn level", r)


def gateway_flag_is_no_longer_unsupported(flag_args, name, said):
    """The gateway session (docs/gateway.md) uses these now: no 'unsupported' warning."""
    r = sv(["--log-level", "info"] + flag_args + ["--", "sh", "-c", "echo RAN"])
    check(r.rc == 0 and "RAN" in r.out, "command did not run with %s" % name, r)
    check(not [l for l in r.err.splitlines() if "unsupported" in l and name in l],
          "%s is still reported as unsupported" % name, r)
    check(said in r.err, "the gateway decision is not logged", r)


@test()
def sandbox_id_flag_alone_runs_standalone():
    gateway_flag_is_no_longer_unsupported(["--sandbox-id", "sbx-123"], "sandbox-id",
                                          "running standalone")


@test()
def openshell_endpoint_flag_without_ssh_socket_starts_no_session():
    gateway_flag_is_no_longer_unsupported(
        ["--openshell-endpoint", "http://127.0.0.1:1"], "openshell-endpoint",
        "no supervisor session")


@test()
def ssh_socket_path_flag_alone_runs_standalone():
    gateway_flag_is_no_longer_unsupported(["--ssh-socket-path", "/run/openshell/ssh.sock"],
                                          "ssh-socket-path", "running standalone")


@test()
def unsupported_health_check_flag_is_accepted_with_warning():
    unsupported(["--health-check"], "health-check")


@test()
def log_level_error_silences_unsupported_flag_warning():
    r = sv(["--log-level", "error", "--health-check", "--", "true"])
    check(r.rc == 0, "expected exit 0", r)
    check("unsupported" not in r.err, "warning printed at --log-level error", r)


@test()
def missing_workdir_is_created_for_the_agent():
    shutil.rmtree(CTX.path("/work/new"), ignore_errors=True)
    r = sv(["--workdir", "/work/new", "--", "sh", "-c", "pwd; touch f && echo WROTE"])
    check(r.rc == 0 and r.out == "/work/new\nWROTE\n", "workdir not created or not writable", r)
    st = os.stat(CTX.path("/work/new"))
    check(st.st_uid == 1000 and st.st_gid == 1000, "created workdir is not the agent's", r)


@test()
def uncreatable_workdir_exits_1_naming_it():
    r = sv(["--workdir", "/etc/passwd/sub", "--", "sh", "-c", "echo RAN"])
    check(r.rc == 1, "expected setup error 1", r)
    check("/etc/passwd" in r.err and "RAN" not in r.out, "bad workdir not reported", r)


@test()
def grace_period_accepts_milliseconds():
    run = start(["--grace-period", "300ms", "--", "ignterm"])
    r, after = signal_and_time(run, signal.SIGTERM, "ready")
    check(r.rc == 137, "expected 137", r)
    check(0.3 <= after < 2.0, "SIGKILL %.2fs after SIGTERM with a 300 ms grace period" % after, r)


@test()
def help_prints_usage_on_stdout_exit_0():
    r = sv(["--help"])
    check(r.rc == 0 and r.out.startswith("Usage: openshell-sandbox"), "bad --help", r)


@test()
def workdir_sets_child_cwd():
    r = sv(["--workdir", "/sandbox", "--", "readlink", "/proc/self/cwd"])
    check(r.rc == 0 and r.out == "/sandbox\n", "child's cwd is not /sandbox", r)


# ---------------------------------------------------------------------------------------------------
# copy-self


@test()
def copy_self_into_directory_uses_exe_basename_mode_0755():
    d = CTX.path("/sandbox/bin")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    r = sv(["copy-self", "/sandbox/bin/"])
    check(r.rc == 0, "copy-self failed", r)
    dest = os.path.join(d, "openshell-sandbox")
    check(os.listdir(d) == ["openshell-sandbox"], "directory holds %r" % os.listdir(d), r)
    check(h.stat_mode(dest) == 0o755, "mode is %o" % h.stat_mode(dest), r)
    check(files_equal(dest, CTX.path(h.IN_ROOT_SUPERVISOR)), "copy differs from the original", r)


@test()
def copied_supervisor_runs_as_pid1_and_propagates_exit():
    if not os.path.exists(CTX.path("/sandbox/bin/openshell-sandbox")):
        os.makedirs(CTX.path("/sandbox/bin"), exist_ok=True)
        r = sv(["copy-self", "/sandbox/bin/"])
        check(r.rc == 0, "copy-self failed", r)
    run = start(["--", "sh", "-c", "read go; exit 7"], exe="/sandbox/bin/openshell-sandbox",
                stdin="pipe")
    # Read from outside: the agent's own /proc hides PID 1.
    with open("/proc/%d/cmdline" % run.host_pid(), "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode()
    run.stdin_write(b"go\n")
    r = run.finish(10.0)
    check(cmdline.startswith("/sandbox/bin/openshell-sandbox "), "PID 1 is not the copy: %r" % cmdline, r)
    check(r.rc == 7, "expected exit 7", r)


@test()
def copy_self_to_file_path_replaces_it_atomically_mode_0755():
    d = CTX.path("/sandbox/dest")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    dest = os.path.join(d, "sv2")
    with open(dest, "w") as f:
        f.write("old contents\n")
    os.chmod(dest, 0o600)
    r = sv(["copy-self", "/sandbox/dest/sv2"])
    check(r.rc == 0, "copy-self failed", r)
    check(os.listdir(d) == ["sv2"], "directory holds %r (temp file left?)" % os.listdir(d), r)
    check(h.stat_mode(dest) == 0o755, "mode is %o" % h.stat_mode(dest), r)
    check(files_equal(dest, CTX.path(h.IN_ROOT_SUPERVISOR)), "copy differs from the original", r)


@test()
def copy_self_names_copy_after_the_invoked_exe():
    src = CTX.path("/sandbox/renamed-sv")
    shutil.copy2(CTX.path(h.IN_ROOT_SUPERVISOR), src)
    d = CTX.path("/sandbox/out")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    r = sv(["copy-self", "/sandbox/out"], exe="/sandbox/renamed-sv")
    check(r.rc == 0, "copy-self failed", r)
    check(os.listdir(d) == ["renamed-sv"], "directory holds %r" % os.listdir(d), r)


@test()
def copy_self_creates_missing_parent_dirs():
    shutil.rmtree(CTX.path("/sandbox/deep"), ignore_errors=True)
    r = sv(["copy-self", "/sandbox/deep/a/b/sv"])
    dest = CTX.path("/sandbox/deep/a/b/sv")
    check(r.rc == 0 and os.path.isfile(dest), "copy-self did not create the parent dirs", r)
    check(h.stat_mode(dest) == 0o755, "mode is %o" % h.stat_mode(dest), r)


@test()
def copy_self_without_dest_is_usage_error_2():
    r = sv(["copy-self"])
    check(r.rc == 2, "expected usage error 2", r)
    check(r.out == "", "stdout must stay empty", r)
