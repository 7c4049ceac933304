#!/bin/sh
# mkrootfs.sh OUTDIR SUPERVISOR_BINARY: build the integration tests' root filesystem.
#
# The rootfs holds busybox-static (no bash: the default command must fall back to /bin/sh), the
# supervisor at /opt/openshell/bin/openshell-sandbox, the static test helpers in /usr/local/bin and
# empty /proc, /dev, /tmp, /sandbox. It must hold no libc and no dynamic loader: the script fails if
# it finds one, or any ELF file with a program interpreter. It only ever deletes an OUTDIR it made.
set -eu

usage() {
	echo "usage: mkrootfs.sh OUTDIR SUPERVISOR_BINARY" >&2
	exit 100
}
die() {
	echo "mkrootfs.sh: $*" >&2
	exit 1
}

[ $# -eq 2 ] || usage
out=$1
supervisor=$2
here=$(cd "$(dirname "$0")" && pwd)
marker=.openshell-test-rootfs
cc=${MUSL_CC:-musl-gcc}
busybox=${BUSYBOX:-/bin/busybox}

[ -f "$supervisor" ] || die "supervisor binary not found: $supervisor"
[ -x "$busybox" ] || die "busybox not found: $busybox (apt-get install busybox-static)"
command -v "$cc" >/dev/null || die "$cc not found (apt-get install musl-tools)"
command -v readelf >/dev/null || die "readelf not found (apt-get install binutils)"

# An ELF file is static for our purpose when it has no PT_INTERP and no DT_NEEDED.
is_dynamic() {
	readelf -lW "$1" 2>/dev/null | grep -q 'INTERP' && return 0
	readelf -dW "$1" 2>/dev/null | grep -q '(NEEDED)' && return 0
	return 1
}

is_dynamic "$supervisor" && die "$supervisor is dynamically linked; the test rootfs has no libc"
is_dynamic "$busybox" && die "$busybox is dynamically linked; install busybox-static"

if [ -e "$out" ]; then
	if [ -f "$out/$marker" ]; then
		rm -rf "$out"
	elif [ -d "$out" ] && [ -z "$(ls -A "$out")" ]; then
		rmdir "$out"
	else
		die "$out exists and is not a rootfs made by this script; refusing to delete it"
	fi
fi
mkdir -p "$out"
: >"$out/$marker"

# Merged /usr, as current distributions lay it out: /bin and /sbin are links into /usr, which
# the default policy grants read-only.
for d in usr/bin usr/sbin usr/local/bin opt/openshell/bin etc root sandbox tmp proc dev \
	sys var/log run; do
	mkdir -p "$out/$d"
done
ln -s usr/bin "$out/bin"
ln -s usr/sbin "$out/sbin"
chmod 1777 "$out/tmp"
chmod 0700 "$out/root"
# The workspace belongs to the agent's user, as an image built for it would have it.
chown 1000:1000 "$out/sandbox"

cp "$busybox" "$out/usr/bin/busybox"
chmod 0755 "$out/usr/bin/busybox"
applets="sh ash sleep cat echo kill ps ls env id tty stty true false printf grep sed test [ readlink
	setsid seq pwd mkdir rm rmdir wc head tail tr sort uname stat touch chmod ln cp mv cmp od base64
	timeout nohup hostname date dirname basename expr yes xargs find"
for a in $applets; do
	case "$a" in
	nohup) "$busybox" --list | grep -qx nohup || continue ;;
	esac
	ln -s busybox "$out/bin/$a"
done

cp "$supervisor" "$out/opt/openshell/bin/openshell-sandbox"
chmod 0755 "$out/opt/openshell/bin/openshell-sandbox"

for src in "$here"/helpers/*.c; do
	name=$(basename "$src" .c)
	"$cc" -static -Os -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
		-o "$out/usr/local/bin/$name" "$src" || die "building helper $name failed"
done

# The escape battery runs as the sandbox's main process (tests/escape).
"$cc" -static -Os -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-o "$out/usr/local/bin/escape" "$here/../escape/escape.c" || die "building escape failed"

cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sandbox:x:1000:1000:sandbox:/sandbox:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$out/etc/group" <<'EOF'
root:x:0:
tty:x:5:
sandbox:x:1000:
nogroup:x:65534:
EOF
echo openshell-test >"$out/etc/hostname"

# Fixtures for the escape battery (tests/escape): a world-writable file inside read-only /etc,
# a readable file outside the policy, and a setuid-root shell.
mkdir -p "$out/etc/escape"
echo original >"$out/etc/escape/world-writable"
chmod 0666 "$out/etc/escape/world-writable"
echo secret >"$out/opt/secret"
chmod 0644 "$out/opt/secret"
cp "$busybox" "$out/usr/local/bin/suid-sh"
chmod 4755 "$out/usr/local/bin/suid-sh"
# A login shell reads /etc/profile: the default-command test asks it, through PROFILE_PROBE, to
# prove it ran as a login shell on a terminal and to exit with a known status.
cat >"$out/etc/profile" <<'EOF'
if [ -n "${PROFILE_PROBE:-}" ]; then
	echo "profile-probe login-shell=$0 tty=$(tty)"
	exit "$PROFILE_PROBE"
fi
EOF

found=$(find "$out" \( -name 'ld-linux*' -o -name 'ld-musl*' -o -name 'libc.so*' \) -print)
[ -z "$found" ] || die "rootfs contains a libc or dynamic loader: $found"
find "$out" -type f | while read -r f; do
	if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] && is_dynamic "$f"; then
		die "rootfs contains a dynamically linked ELF file: $f"
	fi
done
