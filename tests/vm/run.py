#!/usr/bin/python3
"""VM guest tests: build/supervisor as PID 1 of QEMU guests, started the way OpenShell's VM driver
starts it, the escape battery as its main process. Part of `make check` (`make vm` alone).

Usage: run.py [NAME_SUBSTRING...]
Env: SUPERVISOR; VM_KERNEL (a vmlinuz standing in for Debian 12's); VM_HOST_KERNEL (this
machine's, default /boot/vmlinuz-$(uname -r)); QEMU; VM_JOBS (guests at once, default 2);
VM_TIMEOUT (seconds per boot); CI=true (a missing qemu or Debian kernel fails, not skips).

Guests (one boot each, several checks per boot): Debian 12's kernel (6.1, Landlock ABI 2) with
hard_requirement and with best_effort; the same kernel booted with `lsm=` without landlock; and
this machine's kernel when its image is readable (skipped, saying why, when not). Debian's kernel
is the linux-image-amd64 package fetched once with `apt-get download` (never installed) and
cached in build/vm/kernel; the initramfs is cached in build/vm too, rebuilt when its inputs change.
The initramfs is the integration rootfs (tests/integration/mkrootfs.sh: busybox-static, the static
helpers, the escape battery) plus an /init that mounts /proc, /sys, /dev, /dev/pts, /tmp and
securityfs, prints the active LSMs, and reads its steps from the kernel command line:
sv.selftest=1 runs `--self-test --json`; sv.child=MODE runs the supervisor once as init's child
with that policy (status through `$?`); sv.compat=MODE installs that policy and execs the
supervisor with `--workdir /sandbox` and a base64url: spec. When PID 1 exits the kernel panics
with its exit code ("Attempted to kill init! exitcode=0x0000NN00"), which is how the status
reaches the host; `panic=-1` and -no-reboot end QEMU at once. Prints `ok N - name` /
`not ok N - name`, the seconds each boot took, and `N passed, N failed[, N skipped]`.
"""

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUPERVISOR = os.environ.get("SUPERVISOR", os.path.join(REPO, "build", "supervisor"))
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
BOOT_TIMEOUT = int(os.environ.get("VM_TIMEOUT", "240"))
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
# Guests booted at once: TCG runs a one-CPU guest on one host thread, so two cores take two.
JOBS = max(1, int(os.environ.get("VM_JOBS", str(min(2, os.cpu_count() or 1)))))

INIT = r"""#!/bin/sh
# The guest's init: mount what the kernel does not, run the steps named on the kernel command
# line, then exec the supervisor as the VM driver does.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mkdir -p /dev/pts
/bin/busybox mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
/bin/busybox ln -sf pts/ptmx /dev/ptmx
/bin/busybox mount -t tmpfs -o mode=1777 tmpfs /tmp
/bin/busybox mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
echo "vm-init: lsm=$(/bin/busybox cat /sys/kernel/security/lsm 2>/dev/null || echo unknown)"
mode=best_effort child= selftest=
for w in $(/bin/busybox cat /proc/cmdline); do
	case "$w" in
	sv.compat=*) mode=${w#sv.compat=} ;;
	sv.child=*) child=${w#sv.child=} ;;
	sv.selftest=1) selftest=1 ;;
	esac
done
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
export OPENSHELL_MAIN_PROCESS_SPEC=@SPEC@
if [ -n "$selftest" ]; then
	echo "vm-init: self-test begin"
	/opt/openshell/bin/openshell-sandbox --self-test --json 2>/dev/null
	echo "vm-init: self-test end status=$?"
fi
if [ -n "$child" ]; then
	/bin/busybox cp "/etc/openshell/$child.ini" /etc/openshell/policy.ini
	echo "vm-init: child compat=$child begin"
	/opt/openshell/bin/openshell-sandbox --workdir /sandbox
	echo "vm-init: child compat=$child end status=$?"
fi
/bin/busybox cp "/etc/openshell/$mode.ini" /etc/openshell/policy.ini
echo "vm-init: compat=$mode"
exec /opt/openshell/bin/openshell-sandbox --workdir /sandbox
"""

BATTERY = ("echo SECRET=$(cat /srv/secret 2>/dev/null || echo unreadable); "
           "escape --connect-unix /srv/agent.sock; escape --mount-fence; exit 7")

# Lines the guest must win whatever its Landlock (the fence holds them on its own).
FENCE_LINES = ("read /opt/secret", "list /root", "create a file in read-only /etc/escape",
               "open the world-writable file in /etc for writing",
               "open(O_RDONLY|O_TRUNC) the world-writable file in /etc",
               "truncate() the world-writable file in /etc", "read /proc/1/environ",
               "read PID 1's network view /proc/1/net/tcp", "fork and exec /bin/true")

TESTS = []


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg, out=""):
    if not cond:
        raise Fail(msg + ("\n" + out[-3000:] if out else ""))


def test(fn):
    TESTS.append((fn.__name__, fn))
    return fn


def cpio_newc(root, out_path):
    """Write @root as a newc cpio archive (what the kernel unpacks as an initramfs)."""
    ino = [0]

    def entry(f, name, st, data=b""):
        ino[0] += 1
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino[0], st.st_mode, st.st_uid, st.st_gid, 1, int(st.st_mtime), len(data), 0, 0, 0,
            0, len(nb), 0))
        f.write(hdr.encode() + nb)
        f.write(b"\0" * ((4 - (110 + len(nb)) % 4) % 4))
        f.write(data)
        f.write(b"\0" * ((4 - len(data) % 4) % 4))

    with open(out_path, "wb") as f:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            if rel != ".":
                entry(f, rel, os.lstat(dirpath))
            for n in sorted(filenames) + [d for d in dirnames
                                          if os.path.islink(os.path.join(dirpath, d))]:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                name = os.path.normpath(os.path.join(rel, n))
                if os.path.islink(p):
                    entry(f, name, st, os.readlink(p).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as g:
                        entry(f, name, st, g.read())
                else:  # a socket, FIFO or device: the inode alone
                    entry(f, name, st)

        class Trailer:
            st_mode = st_uid = st_gid = st_mtime = 0
        entry(f, "TRAILER!!!", Trailer)


def debian_kernel(work):
    """Debian 12's kernel: VM_KERNEL, else linux-image-amd64's image cached in build/vm/kernel
    (fetched once with apt-get download, only boot/vmlinuz-* kept). Returns (path, why-not)."""
    k = os.environ.get("VM_KERNEL")
    if k:
        return (k, None) if os.path.isfile(k) else (None, "VM_KERNEL=%s is not a file" % k)
    d = os.path.join(work, "kernel")
    cached = sorted(glob.glob(os.path.join(d, "boot", "vmlinuz-*")))
    if cached:
        return cached[-1], None
    shutil.rmtree(d, ignore_errors=True)
    tmp = d + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    # Stale package lists (an image built earlier; a security update since) name a version the
    # archive no longer has: as root, refresh them once and try again.
    why = None
    for attempt in (1, 2):
        if attempt == 2:
            if os.geteuid() != 0:
                break
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
        dep = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                             capture_output=True, text=True)
        m = re.search(r"Depends: (linux-image-[0-9][^\s]*)", dep.stdout)
        if not m:
            why = "apt-cache knows no linux-image-amd64 (not a Debian machine?)"
            continue
        p = subprocess.run(["apt-get", "download", m.group(1)], cwd=tmp, capture_output=True,
                           text=True, timeout=600)
        if glob.glob(os.path.join(tmp, "*.deb")):
            break
        why = "apt-get download %s failed: %s" % (m.group(1), p.stderr.strip()[-300:])
    debs = glob.glob(os.path.join(tmp, "*.deb"))
    if not debs:
        shutil.rmtree(tmp, ignore_errors=True)
        return None, why
    # The image is near the start of the package's data: stream the tar and stop there (the
    # whole archive is ~400 MB of modules).
    os.makedirs(os.path.join(d, "boot"))
    x = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", debs[0]], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        with tarfile.open(fileobj=x.stdout, mode="r|") as tar:
            for member in tar:
                name = os.path.basename(member.name)
                if member.isfile() and name.startswith("vmlinuz-"):
                    with open(os.path.join(d, "boot", name), "wb") as g:
                        shutil.copyfileobj(tar.extractfile(member), g)
                    break
    except tarfile.TarError:
        pass
    finally:
        x.kill()
        x.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    found = sorted(glob.glob(os.path.join(d, "boot", "vmlinuz-*")))
    if not found:
        shutil.rmtree(d, ignore_errors=True)
        return None, "no boot/vmlinuz-* in %s" % os.path.basename(debs[0])
    return found[-1], None


def host_kernel():
    """This machine's kernel image, or (None, why-not)."""
    rel = os.uname().release
    k = os.environ.get("VM_HOST_KERNEL") or "/boot/vmlinuz-" + rel
    if not os.path.isfile(k):
        return None, ("no image of this machine's kernel %s: %s does not exist (set "
                      "VM_HOST_KERNEL)" % (rel, k))
    if not os.access(k, os.R_OK):
        return None, "%s is not readable (run as root, or set VM_HOST_KERNEL)" % k
    if CTX.kernel and os.path.basename(k) == os.path.basename(CTX.kernel):
        return None, "this machine runs Debian's guest kernel %s: covered above" % rel
    return k, None


class Ctx:
    work = None
    kernel = None
    initrd = None
    local = threading.local()  # .boots: (what, seconds) of the boots the running case made


CTX = Ctx()


def initrd_inputs():
    files = [SUPERVISOR, BUSYBOX, os.path.abspath(__file__),
             os.path.join(REPO, "tests", "integration", "mkrootfs.sh"),
             os.path.join(REPO, "tests", "escape", "escape.c")]
    files += sorted(glob.glob(os.path.join(REPO, "tests", "integration", "helpers", "*")))
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode() + b"\0")
        with open(f, "rb") as g:
            h.update(hashlib.sha256(g.read()).digest())
    return h.hexdigest()


def build_initrd():
    """The guest's initramfs, rebuilt only when the supervisor, the rootfs recipe, the battery,
    the helpers or this file changed (the key is their hash, kept next to the archive)."""
    CTX.initrd = os.path.join(CTX.work, "initrd.cpio")
    key = initrd_inputs()
    keyfile = CTX.initrd + ".key"
    try:
        with open(keyfile) as f:
            if f.read().strip() == key and os.path.isfile(CTX.initrd):
                return
    except OSError:
        pass
    rootfs = os.path.join(CTX.work, "rootfs")
    p = subprocess.run([os.path.join(REPO, "tests", "integration", "mkrootfs.sh"), rootfs,
                        SUPERVISOR], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise Fail("mkrootfs.sh failed: " + p.stdout + p.stderr)
    spec = json.dumps({"version": 1, "command": ["/bin/sh", "-c", BATTERY], "tty": False})
    b64 = base64.urlsafe_b64encode(spec.encode()).decode().rstrip("=")
    with open(os.path.join(rootfs, "init"), "w") as f:
        f.write(INIT.replace("@SPEC@", "base64url:" + b64))
    os.chmod(os.path.join(rootfs, "init"), 0o755)
    os.makedirs(os.path.join(rootfs, "etc", "openshell"), exist_ok=True)
    for mode in ("best_effort", "hard_requirement"):
        with open(os.path.join(rootfs, "etc", "openshell", mode + ".ini"), "w") as f:
            f.write("[landlock]\ncompatibility = %s\n" % mode)
    os.makedirs(os.path.join(rootfs, "srv"), exist_ok=True)
    with open(os.path.join(rootfs, "srv", "secret"), "w") as f:
        f.write("vm-secret\n")
    os.chmod(os.path.join(rootfs, "srv", "secret"), 0o644)
    # A 0777 socket outside the policy: a socket file in the archive is a socket inode in the
    # guest, but nothing listens on it, so an unfenced connect gets ECONNREFUSED, not ENOENT.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.path.join(rootfs, "srv", "agent.sock"))
    s.close()
    os.chmod(os.path.join(rootfs, "srv", "agent.sock"), 0o777)
    if os.path.exists(keyfile):
        os.unlink(keyfile)
    cpio_newc(rootfs, CTX.initrd + ".tmp")
    os.replace(CTX.initrd + ".tmp", CTX.initrd)
    with open(keyfile, "w") as f:
        f.write(key + "\n")


class Boot:
    """One guest's console, cut at the init's markers: .selftest (the parsed JSON layers, by
    name), .child (the child run's output) and .child_status, .main (the PID 1 run's output)
    and .status (PID 1's exit code from the panic line), .lsm (the guest's active LSMs)."""

    def __init__(self, out):
        self.out = out
        m = re.search(r"Attempted to kill init! exitcode=0x([0-9a-fA-F]+)", out)
        self.status = (int(m.group(1), 16) >> 8) & 0xff if m else None
        m = re.search(r"vm-init: lsm=(\S*)", out)
        self.lsm = m.group(1).split(",") if m else None
        self.selftest = None
        m = re.search(r"vm-init: self-test begin\r?\n(.*?)vm-init: self-test end", out, re.S)
        if m:
            for line in m.group(1).splitlines():
                line = line.strip("\r")
                if line.startswith("{"):
                    try:
                        self.selftest = {lay["layer"]: lay for lay in json.loads(line)["layers"]}
                    except (ValueError, KeyError, TypeError):
                        pass
        self.child = self.child_status = None
        m = re.search(r"vm-init: child compat=\S+ begin\r?\n(.*?)vm-init: child compat=\S+ end "
                      r"status=(\d+)", out, re.S)
        if m:
            self.child, self.child_status = m.group(1), int(m.group(2))
        i = out.find("vm-init: compat=")
        self.main = out[i:] if i >= 0 else ""

    def layer(self, name):
        check(self.selftest is not None, "no --self-test --json output", self.out)
        check(name in self.selftest, "--self-test has no %s layer" % name, self.out)
        return self.selftest[name]


def boot(kernel, cmdline):
    """Boot a guest to its end. no_timer_check: on a loaded host, TCG can miss the ticks the
    kernel counts to verify the IO-APIC timer, and it panics before init ("IO-APIC + timer
    doesn't work!"). A guest that still dies before its init prints anything is booted once
    more (noted in the boot list); what the init and the supervisor print is never retried."""
    cmd = [QEMU, "-m", "512", "-nographic", "-no-reboot", "-kernel", kernel, "-initrd",
           CTX.initrd, "-append", "console=ttyS0 panic=-1 quiet no_timer_check " + cmdline]
    if os.path.exists("/dev/kvm"):
        cmd[1:1] = ["-enable-kvm", "-cpu", "host"]
    what = "%s %s" % (os.path.basename(kernel), cmdline)
    for attempt in (1, 2):
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=BOOT_TIMEOUT)
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        reached = "vm-init: lsm=" in out
        CTX.local.boots.append((what + ("" if reached else " (died before init)"),
                                time.monotonic() - t0))
        if reached:
            break
    return Boot(out)


def verdicts(out):
    res = {}
    for line in out.splitlines():
        line = line.strip("\r")
        for tag in ("not ok ", "ok "):
            if line.startswith(tag):
                rest = line[len(tag):].split(" - ", 1)
                if len(rest) == 2:
                    res[rest[1].split(" (")[0].split(": ")[0]] = tag.strip()
                break
    return res


def fenced(out, what="the agent"):
    v = verdicts(out)
    check(len(v) > 50, "%s: the escape battery did not run" % what, out)
    bad = [n for n in FENCE_LINES if v.get(n) != "ok"]
    check(not bad, "%s: the fence let these through: %r" % (what, bad), out)
    check("SECRET=unreadable" in out, "%s read /srv/secret" % what, out)
    check("connect: ENOENT" in out, "%s reached the socket under /srv" % what, out)


def fence_layer_ok(b):
    lay = b.layer("mount_fence")
    check(lay["status"] == "ok", "--self-test mount_fence: %s (%s)" % (lay["status"],
                                                                       lay["reason"]), b.out)


def landlock_abi(b):
    """The Landlock ABI the guest's --self-test reports, 0 when it says Landlock is off."""
    lay = b.layer("landlock")
    m = re.search(r"\bABI (\d+)", lay["reason"])
    if lay["status"] == "unavailable":
        return 0
    check(m is not None, "--self-test landlock names no ABI: %r" % lay["reason"], b.out)
    return int(m.group(1))


@test
def vm_debian61_hard_requirement_starts_on_landlock_abi_2_and_the_status_reaches_init():
    b = boot(CTX.kernel, "sv.compat=hard_requirement sv.selftest=1")
    check(b.lsm is not None and "landlock" in b.lsm, "Landlock is not active: %r" % b.lsm, b.out)
    check(landlock_abi(b) == 2, "--self-test: not Landlock ABI 2: %r" % b.layer("landlock"),
          b.out)
    fence_layer_ok(b)
    check(b.status == 7, "exit status %r did not reach init (want 7)" % b.status, b.out)
    check("Landlock ABI 2" in b.main and "TRUNCATE (ABI 3)" in b.main,
          "no HIGH finding naming what ABI 2 lacks", b.out)
    fenced(b.main)


@test
def vm_debian61_best_effort_runs_the_battery_under_the_fence():
    b = boot(CTX.kernel, "sv.compat=best_effort")
    check(b.lsm is not None and "landlock" in b.lsm, "Landlock is not active: %r" % b.lsm, b.out)
    check(b.status == 7, "exit status %r did not reach init (want 7)" % b.status, b.out)
    fenced(b.main)


@test
def vm_debian61_without_landlock_best_effort_is_fenced_and_hard_requirement_refuses():
    # hard_requirement runs first, as init's child (it must refuse: status 1, no agent); then
    # best_effort is exec'd as PID 1 and must run the battery on the mount fence alone.
    b = boot(CTX.kernel, "lsm=lockdown,yama sv.selftest=1 sv.child=hard_requirement "
             "sv.compat=best_effort")
    check(b.lsm is not None and "landlock" not in b.lsm,
          "the guest's LSMs still include landlock: %r" % b.lsm, b.out)
    lay = b.layer("landlock")
    check(lay["status"] == "unavailable" and "disabled at boot" in lay["reason"],
          "--self-test does not say Landlock is off: %r" % lay, b.out)
    fence_layer_ok(b)
    check(b.child is not None, "the hard_requirement child run did not finish", b.out)
    check(b.child_status == 1, "hard_requirement without Landlock: status %r (want 1)" %
          b.child_status, b.out)
    check("SECRET=" not in b.child, "hard_requirement without Landlock ran the agent", b.out)
    check(b.status == 7, "best_effort: exit status %r did not reach init (want 7)" % b.status,
          b.out)
    check("Running WITHOUT Landlock" in b.main and "disabled at boot" in b.main,
          "no landlock_unavailable finding", b.out)
    fenced(b.main)


@test
def vm_this_machines_kernel_runs_both_settings_fenced():
    k, why = host_kernel()
    if not k:
        raise Skip(why)
    # best_effort as init's child, hard_requirement as PID 1 (it starts where Landlock is on).
    b = boot(k, "sv.selftest=1 sv.child=best_effort sv.compat=hard_requirement")
    check(b.selftest is not None, "the guest did not reach its init (does the kernel have "
          "8250 serial and initramfs support built in?)", b.out)
    fence_layer_ok(b)
    check(b.child_status == 7, "best_effort: status %r (want 7)" % b.child_status, b.out)
    fenced(b.child, "best_effort")
    if landlock_abi(b) == 0:
        check(b.status == 1, "hard_requirement without Landlock: status %r (want 1)" %
              b.status, b.out)
        check("SECRET=" not in b.main, "hard_requirement without Landlock ran the agent", b.out)
    else:
        check(b.status == 7, "exit status %r did not reach init (want 7)" % b.status, b.out)
        fenced(b.main, "hard_requirement")


def main(argv):
    wanted = argv[1:]
    tests = [t for t in TESTS if not wanted or any(w in t[0] for w in wanted)]
    strict = os.environ.get("CI") == "true"
    CTX.work = os.path.join(REPO, "build", "vm")
    os.makedirs(CTX.work, exist_ok=True)
    why = None
    t0 = time.monotonic()
    if shutil.which(QEMU) is None:
        why = "%s not found (apt-get install qemu-system-x86)" % QEMU
    elif not os.path.isfile(SUPERVISOR):
        why = "supervisor binary %s not found (run make)" % SUPERVISOR
    else:
        CTX.kernel, why = debian_kernel(CTX.work)
    if why is None:
        try:
            build_initrd()
        except (Fail, subprocess.SubprocessError, OSError) as e:
            why = "initramfs: %s" % e
    print("# setup (kernel, initramfs): %.1f s" % (time.monotonic() - t0), flush=True)
    def run_case(fn):
        """(verdict, message, boots) of one case; runs in a worker thread."""
        CTX.local.boots = []
        try:
            fn()
            return "ok", None, CTX.local.boots
        except Skip as e:
            return "skip", str(e), CTX.local.boots
        except (Fail, subprocess.TimeoutExpired) as e:
            return "fail", str(e), CTX.local.boots

    n_ok = n_fail = n_skip = 0
    if why:
        results = [("fail" if strict else "skip", why, [])] * len(tests)
    else:
        with ThreadPoolExecutor(max_workers=JOBS) as pool:
            results = pool.map(run_case, [fn for _, fn in tests])
    for i, ((name, _), (verdict, msg, boots)) in enumerate(zip(tests, results), 1):
        if verdict == "ok":
            print("ok %d - %s" % (i, name), flush=True)
            n_ok += 1
        elif verdict == "skip":
            print("ok %d - %s # SKIP %s" % (i, name, msg), flush=True)
            n_skip += 1
        elif why:
            print("not ok %d - %s # %s" % (i, name, msg), flush=True)
            n_fail += 1
        else:
            print("not ok %d - %s" % (i, name), flush=True)
            for line in msg.splitlines():
                print("#   " + line, flush=True)
            n_fail += 1
        for what, secs in boots:
            print("#   boot %.1f s: %s" % (secs, what), flush=True)
    print("# total %.1f s" % (time.monotonic() - t0), flush=True)
    print("%d passed, %d failed%s" % (n_ok, n_fail, ", %d skipped" % n_skip if n_skip else ""),
          flush=True)
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
