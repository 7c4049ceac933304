#!/usr/bin/python3
"""VM guest tests: the supervisor as PID 1 of a QEMU guest running Debian 12's kernel (6.1,
Landlock ABI 2), the escape battery as its main process.

Usage: run.py [NAME_SUBSTRING...]   (env SUPERVISOR, VM_KERNEL=path to a vmlinuz, QEMU)
The guest's initramfs is the integration rootfs (tests/integration/mkrootfs.sh: busybox-static,
the static helpers, the escape battery and its fixtures) plus an /init that mounts /proc, /sys,
/dev, /dev/pts and /tmp, installs the policy named on the kernel command line and execs the
supervisor with `--workdir /sandbox` and a base64url: spec. When PID 1 exits the kernel panics
with its exit code ("Attempted to kill init! exitcode=0x0000NN00"), which is how the status
reaches the host; `panic=-1` and -no-reboot end QEMU at once. Without a kernel image the
linux-image-amd64 package is fetched with `apt-get download` (never installed). Prints
`ok N - name` / `not ok N - name` and `N passed, N failed[, N skipped]`; without qemu or a kernel
every case is skipped saying why (a failure with CI=true).
"""

import base64
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUPERVISOR = os.environ.get("SUPERVISOR", os.path.join(REPO, "build", "supervisor"))
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
BOOT_TIMEOUT = int(os.environ.get("VM_TIMEOUT", "240"))

INIT = r"""#!/bin/sh
# The guest's init: mount what the kernel does not, pick the policy, exec the supervisor.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mkdir -p /dev/pts
/bin/busybox mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
/bin/busybox ln -sf pts/ptmx /dev/ptmx
/bin/busybox mount -t tmpfs -o mode=1777 tmpfs /tmp
mode=best_effort
for w in $(/bin/busybox cat /proc/cmdline); do
	case "$w" in sv.compat=*) mode=${w#sv.compat=} ;; esac
done
/bin/busybox mkdir -p /etc/openshell
/bin/busybox cp "/etc/openshell/$mode.ini" /etc/openshell/policy.ini
echo "vm-init: compat=$mode"
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
export OPENSHELL_MAIN_PROCESS_SPEC=@SPEC@
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


def find_kernel(work):
    k = os.environ.get("VM_KERNEL")
    if k:
        return k if os.path.isfile(k) else None
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    if found:
        return found[-1]
    cached = sorted(glob.glob(os.path.join(work, "kernel", "boot", "vmlinuz-*")))
    if cached:
        return cached[-1]
    os.makedirs(os.path.join(work, "kernel"), exist_ok=True)
    dep = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                         text=True)
    m = re.search(r"Depends: (linux-image-[0-9][^\s]*)", dep.stdout)
    if not m:
        return None
    d = os.path.join(work, "kernel")
    subprocess.run(["apt-get", "download", m.group(1)], cwd=d, capture_output=True, timeout=600)
    debs = glob.glob(os.path.join(d, "*.deb"))
    if not debs:
        return None
    subprocess.run(["dpkg-deb", "-x", debs[0], d], check=True)
    found = sorted(glob.glob(os.path.join(d, "boot", "vmlinuz-*")))
    return found[-1] if found else None


class Ctx:
    work = None
    kernel = None
    initrd = None


CTX = Ctx()


def build_initrd():
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
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.path.join(rootfs, "srv", "agent.sock"))
    s.close()
    os.chmod(os.path.join(rootfs, "srv", "agent.sock"), 0o777)
    CTX.initrd = os.path.join(CTX.work, "initrd.cpio")
    cpio_newc(rootfs, CTX.initrd)


def boot(extra_cmdline):
    cmd = [QEMU, "-m", "512", "-nographic", "-no-reboot", "-kernel", CTX.kernel, "-initrd",
           CTX.initrd, "-append", "console=ttyS0 panic=-1 quiet " + extra_cmdline]
    if os.path.exists("/dev/kvm"):
        cmd[1:1] = ["-enable-kvm", "-cpu", "host"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=BOOT_TIMEOUT)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    m = re.search(r"Attempted to kill init! exitcode=0x([0-9a-fA-F]+)", out)
    status = (int(m.group(1), 16) >> 8) & 0xff if m else None
    return status, out


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


def fenced(out):
    v = verdicts(out)
    bad = [n for n in FENCE_LINES if v.get(n) != "ok"]
    check(not bad, "the fence let these through: %r" % bad, out)
    check("SECRET=unreadable" in out, "the agent read /srv/secret", out)
    check("connect: ENOENT" in out, "the socket under /srv was reachable", out)


@test
def vm_hard_requirement_starts_on_landlock_abi_2_and_the_status_reaches_init():
    status, out = boot("sv.compat=hard_requirement")
    check(status == 7, "exit status %r did not reach init (want 7)" % status, out)
    check("Landlock ABI 2" in out and "TRUNCATE (ABI 3)" in out,
          "no HIGH finding naming what ABI 2 lacks", out)
    fenced(out)


@test
def vm_best_effort_runs_the_battery_under_the_fence():
    status, out = boot("sv.compat=best_effort")
    check(status == 7, "exit status %r did not reach init (want 7)" % status, out)
    fenced(out)


@test
def vm_without_landlock_best_effort_is_fenced_and_hard_requirement_refuses():
    status, out = boot("sv.compat=best_effort lsm=lockdown,yama")
    check(status == 7, "best_effort: exit status %r (want 7)" % status, out)
    check("Running WITHOUT Landlock" in out and "disabled at boot" in out,
          "no landlock_unavailable finding", out)
    fenced(out)
    status, out = boot("sv.compat=hard_requirement lsm=lockdown,yama")
    check(status == 1, "hard_requirement without Landlock: exit status %r (want 1)" % status,
          out)
    check("SECRET=" not in out, "the agent ran", out)


def main(argv):
    wanted = argv[1:]
    tests = [t for t in TESTS if not wanted or any(w in t[0] for w in wanted)]
    strict = os.environ.get("CI") == "true"
    CTX.work = os.path.join(REPO, "build", "vm")
    os.makedirs(CTX.work, exist_ok=True)
    why = None
    if shutil.which(QEMU) is None:
        why = "%s not found (apt-get install qemu-system-x86)" % QEMU
    elif not os.path.isfile(SUPERVISOR):
        why = "supervisor binary %s not found (run make)" % SUPERVISOR
    else:
        CTX.kernel = find_kernel(CTX.work)
        if not CTX.kernel:
            why = "no kernel image (set VM_KERNEL, or allow apt-get download linux-image-amd64)"
    n_ok = n_fail = n_skip = 0
    if why is None:
        try:
            build_initrd()
        except (Fail, subprocess.SubprocessError, OSError) as e:
            why = "initramfs: %s" % e
    for i, (name, fn) in enumerate(tests, 1):
        if why:
            if strict:
                print("not ok %d - %s # %s" % (i, name, why), flush=True)
                n_fail += 1
            else:
                print("ok %d - %s # SKIP %s" % (i, name, why), flush=True)
                n_skip += 1
            continue
        try:
            fn()
            print("ok %d - %s" % (i, name), flush=True)
            n_ok += 1
        except (Fail, subprocess.TimeoutExpired) as e:
            print("not ok %d - %s" % (i, name), flush=True)
            for line in str(e).splitlines():
                print("#   " + line, flush=True)
            n_fail += 1
    print("%d passed, %d failed%s" % (n_ok, n_fail, ", %d skipped" % n_skip if n_skip else ""),
          flush=True)
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
