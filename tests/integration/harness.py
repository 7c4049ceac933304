"""Run the real supervisor binary as PID 1 of fresh PID + mount namespaces, and report from outside.

`unshare --pid --mount --fork` starts a host shell that becomes PID 1 of the new namespaces, mounts
/proc and a minimal /dev (bind mounts plus a private devpts) inside the test rootfs, and execs
`chroot ROOTFS SUPERVISOR ...`: the supervisor itself is PID 1, with no libc on disk. Every mount
lives in the private mount namespace and dies with it; nothing is mounted on the host. Every wait
has a timeout; on expiry the namespace's PID 1 is SIGKILLed, which takes everything inside with it.
Stdlib only, for Debian's /usr/bin/python3.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

IN_ROOT_SUPERVISOR = "/opt/openshell/bin/openshell-sandbox"
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME": "/root",
}
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

# $1 = rootfs, $2.. = argv inside the rootfs. Host tools are passed by absolute path in the env so
# the supervisor's PATH stays the test's PATH.
SETUP_SCRIPT = r"""
set -eu
r=$1; shift
"$TH_MOUNT" -t tmpfs -o mode=0755,size=1m,nosuid tmpfs "$r/dev"
for n in $TH_DEV_NODES; do
	: >"$r/dev/$n"
	"$TH_MOUNT" --bind "/dev/$n" "$r/dev/$n"
done
mkdir "$r/dev/pts" "$r/dev/shm"
"$TH_MOUNT" -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
c=$TH_CHROOT
unset TH_MOUNT TH_CHROOT TH_DEV_NODES PWD OLDPWD
exec "$c" "$r" "$@"
"""


class Result:
    """What one run produced: exit status, both streams (text), wall time, and whether it hung."""

    def __init__(self, rc, out_bytes, err_bytes, elapsed, timed_out):
        self.rc = rc
        self.out_bytes = out_bytes
        self.err_bytes = err_bytes
        self.out = out_bytes.decode("utf-8", "replace")
        self.err = err_bytes.decode("utf-8", "replace")
        self.elapsed = elapsed
        self.timed_out = timed_out

    def describe(self, limit=1500):
        def cut(s):
            return s if len(s) <= limit else s[:limit] + "...[%d more chars]" % (len(s) - limit)

        lines = ["rc=%r elapsed=%.2fs%s" % (self.rc, self.elapsed, " TIMED OUT" if self.timed_out else "")]
        lines.append("stdout: %r" % cut(self.out))
        lines.append("stderr: %r" % cut(self.err))
        return "\n".join(lines)


class _Reader(threading.Thread):
    """Drains one pipe into a buffer that the test can wait on."""

    def __init__(self, fileobj, limit=None, gate=None):
        super().__init__(daemon=True)
        self.fileobj = fileobj
        self.limit = limit
        self.gate = gate  # an Event: reading starts only once it is set (a stalled reader)
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False

    def run(self):
        fd = self.fileobj.fileno()
        if self.gate is not None:
            self.gate.wait()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if chunk:
                    self.buf += chunk
                if not chunk or (self.limit is not None and len(self.buf) >= self.limit):
                    if chunk:
                        self.fileobj.close()  # a reader that goes away early
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.cond.notify_all()

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while needle not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return needle in self.buf
                self.cond.wait(left)
            return True

    def data(self):
        with self.cond:
            return bytes(self.buf)


def host_tool(name):
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise RuntimeError("host tool %s not found" % name)
    return path


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def proc_children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# A listener for the escape battery's abstract-socket probe, created in the agent's network
# namespace (abstract sockets are per namespace) by a process outside its Landlock domain.
PROBE_LISTENER = ("import socket, sys, time\n"
                  "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                  "s.bind(b'\\0openshell-escape-probe')\n"
                  "s.listen(8)\n"
                  "print('up', flush=True)\n"
                  "time.sleep(60)\n")


_IA32 = {}


def escape_command(rootfs):
    """The escape battery's command line for a sandbox over @rootfs. The battery expects int $0x80
    to be killed by seccomp (SIGSYS); on a kernel without the ia32 entry it faults (SIGSEGV) before
    seccomp runs, so the host is probed first, outside any sandbox, and the battery told."""
    if rootfs not in _IA32:
        p = subprocess.run([os.path.join(rootfs, "usr/local/bin/escape"), "--probe-ia32"],
                           capture_output=True, timeout=30)
        _IA32[rootfs] = p.returncode == 0
    # The supervisor always builds its mount fence here (root, mount namespaces), which answers
    # before Landlock on the filesystem lines (tests/escape/README.md).
    return "escape --mount-fence" + ("" if _IA32[rootfs] else " --ia32-absent")


def rss_kib(pid):
    """VmRSS of host pid @pid in KiB (0 when the line is missing)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def netns_of(pid):
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def start_probe_in_netns_of(pid, timeout=5.0):
    """Start the probe listener in the network namespace of host pid @pid; returns the Popen.
    A child just forked by the supervisor joins the agent's namespace only in its spawn hook:
    wait until it has left its parent's namespace, or the probe lands in the wrong one."""
    ppid = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("PPid:"):
                ppid = int(line.split()[1])
    deadline = time.monotonic() + timeout
    while ppid and netns_of(pid) == netns_of(ppid) and time.monotonic() < deadline:
        time.sleep(0.002)
    p = subprocess.Popen([host_tool("nsenter"), "--net=/proc/%d/ns/net" % pid, "/usr/bin/python3",
                          "-c", PROBE_LISTENER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline()
    if line.strip() != b"up":
        p.kill()
        raise RuntimeError("escape probe listener did not start in the agent's namespace")
    return p


def is_proxy_process(pid):
    """The supervisor's own proxy process (docs/architecture.md "Processes"), not the agent."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read() == b"openshell-sandbox\0__proxy\0"
    except OSError:
        return False


def _netns(pid):
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def wait_for_child(pid, timeout=5.0):
    """The first child of host pid @pid that has joined the agent's network namespace (the main
    process of a supervisor). Children still in the supervisor's namespace are set-up helpers
    (the mount fence's builder), the proxy process, or a child before its isolation hook ran."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Read each time: while PID 1 builds the agent's namespace it briefly stands in it
        # itself, and then its helpers (still in its own) would look like the agent. Only a
        # child that has exec'd something else is taken: helpers never exec a program.
        own = _netns(pid)
        for kid in proc_children(pid):
            ns = _netns(kid)
            if (ns is not None and ns != own and not is_proxy_process(kid) and
                    not same_file("/proc/%d/exe" % kid, "/proc/%d/exe" % pid)):
                return kid
        time.sleep(0.005)
    raise RuntimeError("no child of pid %d appeared" % pid)


def same_file(path_a, path_b):
    try:
        a = os.stat(path_a)
        b = os.stat(path_b)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_LIVE = []


def reap_all():
    """Kill and wait for every run a test started and did not finish (a failed check, an error)."""
    while _LIVE:
        run = _LIVE.pop()
        if run.proc.poll() is None:
            run.kill()
            try:
                run.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        run.resume_stderr()
        run.stdin_close()
        for stream in (run.proc.stdout, run.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


class Run:
    """One supervisor process, started in the background so a test can signal it and watch it.

    mode "pid1": PID 1 of new namespaces, chrooted into rootfs; argv[0] is a path inside rootfs.
    mode "host": run directly on the host, argv[0] is a host path.
    stdin: None (/dev/null), bytes (written then closed), or "pipe" (left open: stdin_write/close).
    stdout_limit: close our end of stdout after that many bytes, as a reader that goes away.
    stderr_paused: nobody reads stderr until resume_stderr() (a reader that stalls).
    """

    def __init__(self, argv, rootfs=None, env=None, stdin=None, mode="pid1", extra_env=None,
                 exe=None, stdout_limit=None, stderr_paused=False):
        self.stdout_limit = stdout_limit
        self.err_gate = threading.Event()
        if not stderr_paused:
            self.err_gate.set()
        self.argv = list(argv)
        self.exe = exe if exe is not None else self.argv[0]
        self.rootfs = rootfs
        self.mode = mode
        self.env = dict(BASE_ENV if env is None else env)
        if extra_env:
            self.env.update(extra_env)
        self.stdin_spec = stdin
        self.proc = None
        self.started = None
        self.result = None
        self._pid = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        if self.mode == "pid1":
            cmd = [
                host_tool("unshare"), "--pid", "--mount", "--fork", "--propagation", "private",
                "--kill-child=SIGKILL", "--mount-proc=%s/proc" % self.rootfs, "--",
                host_tool("sh"), "-c", SETUP_SCRIPT, "setup", self.rootfs,
            ] + self.argv
            env = dict(self.env)
            env["TH_MOUNT"] = host_tool("mount")
            env["TH_CHROOT"] = host_tool("chroot")
            env["TH_DEV_NODES"] = " ".join(DEV_NODES)
        else:
            cmd = list(self.argv)
            env = self.env
        if self.stdin_spec is None:
            stdin = subprocess.DEVNULL
        else:
            stdin = subprocess.PIPE
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True)
        _LIVE.append(self)
        self.out = _Reader(self.proc.stdout, self.stdout_limit)
        self.err = _Reader(self.proc.stderr, gate=self.err_gate)
        self.out.start()
        self.err.start()
        if isinstance(self.stdin_spec, (bytes, bytearray)):
            data = bytes(self.stdin_spec)
            threading.Thread(target=self._feed, args=(data,), daemon=True).start()
        return self

    def _feed(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def stdin_write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def resume_stderr(self):
        self.err_gate.set()

    def stdin_close(self):
        if self.proc.stdin is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def host_pid(self, timeout=5.0):
        """The supervisor's pid as the host sees it (after the exec chain reached it)."""
        if self._pid is not None:
            return self._pid
        if self.mode == "host":
            self._pid = self.proc.pid
            return self._pid
        deadline = time.monotonic() + timeout
        exe = os.path.join(self.rootfs, self.exe.lstrip("/"))
        while time.monotonic() < deadline:
            for child in proc_children(self.proc.pid):
                # exec switches /proc/PID/exe before it lays out the new argv, so a process
                # caught in between has an empty cmdline: wait for both.
                if same_file("/proc/%d/exe" % child, exe) and proc_cmdline(child):
                    self._pid = child
                    return child
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        raise RuntimeError("supervisor did not appear as the child of unshare")

    def signal(self, sig):
        os.kill(self.host_pid(), sig)

    def wait_stdout(self, needle, timeout=5.0):
        if isinstance(needle, str):
            needle = needle.encode()
        return self.out.wait_for(needle, timeout)

    def wait_stderr(self, needle, timeout=5.0):
        if isinstance(needle, str):
            needle = needle.encode()
        return self.err.wait_for(needle, timeout)

    def kill(self):
        """SIGKILL the supervisor (which ends the PID namespace) and the unshare process."""
        if self._pid is None and self.mode == "pid1":
            for child in proc_children(self.proc.pid):
                self._pid = child
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self, timeout=10.0):
        timed_out = False
        self.resume_stderr()  # a paused reader would keep the process in write(2) forever
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            rc = self.proc.wait(timeout=10)
        elapsed = time.monotonic() - self.started
        # A leaked copy of our pipes in a surviving process would hold these open: bounded wait.
        self.out.join(timeout=2)
        self.err.join(timeout=2)
        self.stdin_close()
        if self in _LIVE:
            _LIVE.remove(self)
        # unshare re-raises a fatal signal of its child on itself: map back to 128+sig.
        if rc < 0:
            rc = 128 - rc
        self.result = Result(rc, self.out.data(), self.err.data(), elapsed, timed_out)
        return self.result


def run_pid1(rootfs, args, env=None, stdin=None, timeout=10.0, exe=IN_ROOT_SUPERVISOR, prefix=(),
             extra_env=None, stdout_limit=None):
    """Run `[prefix...] exe args...` as PID 1 inside rootfs and wait: returns a Result."""
    run = Run(list(prefix) + [exe] + list(args), rootfs=rootfs, env=env, stdin=stdin,
              extra_env=extra_env, exe=exe, stdout_limit=stdout_limit)
    return run.start().finish(timeout)


def start_pid1(rootfs, args, env=None, stdin=None, exe=IN_ROOT_SUPERVISOR, prefix=(), extra_env=None):
    """Start like run_pid1 but return the Run, for tests that signal the supervisor."""
    return Run(list(prefix) + [exe] + list(args), rootfs=rootfs, env=env, stdin=stdin,
               extra_env=extra_env, exe=exe).start()


# The host has no 'sandbox' user: host runs give the agent nobody's numeric identity, the way
# Kubernetes drivers pass OPENSHELL_SANDBOX_UID/GID.
HOST_IDENTITY = {"OPENSHELL_SANDBOX_UID": "65534", "OPENSHELL_SANDBOX_GID": "65534"}


def run_host(argv, env=None, stdin=None, timeout=10.0, extra_env=None, stdout_limit=None):
    """Run argv directly on the host (the supervisor is not PID 1 there)."""
    extra = dict(HOST_IDENTITY)
    extra.update(extra_env or {})
    return Run(argv, env=env, stdin=stdin, mode="host", extra_env=extra,
               stdout_limit=stdout_limit).start().finish(timeout)


def mounts_under(path):
    """Host mount points at or below path (there must be none after a run)."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4]
            if mnt == path or mnt.startswith(path + "/"):
                found.append(mnt)
    return found


def preflight():
    """Returns None when PID-1 runs are possible here, else the reason they are not."""
    if os.geteuid() != 0:
        return "not root (PID and mount namespaces, chroot and devpts need CAP_SYS_ADMIN)"
    for tool in ("unshare", "mount", "chroot", "sh"):
        try:
            host_tool(tool)
        except RuntimeError as e:
            return str(e)
    try:
        p = subprocess.run([host_tool("unshare"), "--pid", "--mount", "--fork", "--propagation",
                            "private", host_tool("sh"), "-c", "test $$ -eq 1"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unshare failed: %s" % e
    if p.returncode != 0:
        return "cannot create PID + mount namespaces: %s" % p.stderr.decode(errors="replace").strip()
    return None


class Tap:
    """TAP-ish output: `ok N - name`, `not ok N - name` with `# ` detail lines, a summary line."""

    def __init__(self, ci=None):
        self.n = 0
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.ci = os.environ.get("CI") == "true" if ci is None else ci

    def ok(self, name):
        self.n += 1
        self.passed += 1
        print("ok %d - %s" % (self.n, name), flush=True)

    def not_ok(self, name, detail=""):
        self.n += 1
        self.failed += 1
        print("not ok %d - %s" % (self.n, name), flush=True)
        for line in detail.splitlines():
            print("#   " + line, flush=True)

    def skip(self, name, why):
        if self.ci:
            self.not_ok(name, "skipped, and CI=true turns every skip into a failure: " + why)
            return
        self.n += 1
        self.skipped += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why), flush=True)

    def summary(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        print(line, flush=True)
        return 1 if self.failed else 0


class Fail(Exception):
    pass


def check(cond, msg, res=None):
    if not cond:
        raise Fail(msg + ("\n" + res.describe() if res is not None else ""))


def stat_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


if __name__ == "__main__":
    sys.exit("harness.py is a module; run run.py")
