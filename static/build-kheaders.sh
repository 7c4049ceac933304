#!/bin/sh
# Kernel UAPI headers for musl-gcc.
#
# musl-gcc's specs use -nostdinc and only search musl's own include dir, so
# <linux/*.h>, <asm/*.h> and <asm-generic/*.h> are invisible to it. Copy them
# from Debian's linux-libc-dev (sanitised UAPI headers, no glibc headers
# involved) into $DEPS_DIR/include, which every dependency and our own code
# compile with (-isystem build/deps/include).
. "$(dirname "$0")/lib.sh"

# Not pinned: whatever linux-libc-dev the running release has (logged).
dep_version() { echo "(linux-libc-dev)"; }
dep_begin kheaders
need_pkgs linux-libc-dev
version_of_kheaders() { dpkg-query -W -f='${Version}' linux-libc-dev; }

MULTIARCH=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)
inc=$DEPS_DIR/include
for d in linux asm asm-generic; do rm -rf "${inc:?}/$d"; done
mkdir -p "$inc"
run cp -R /usr/include/linux "$inc/linux"
run cp -R /usr/include/asm-generic "$inc/asm-generic"
run cp -R "/usr/include/$MULTIARCH/asm" "$inc/asm"
echo "linux-libc-dev $(version_of_kheaders) ($MULTIARCH)" >"$inc/linux/.deps-origin"

# Smoke test: the headers we rely on must compile under musl.
t=$(mktemp -d)
printf '%s\n' '#include <linux/landlock.h>' '#include <linux/seccomp.h>' \
	'#include <linux/audit.h>' '#include <linux/netlink.h>' \
	'#include <linux/rtnetlink.h>' '#include <linux/capability.h>' \
	'#include <asm/unistd.h>' '#include <sys/socket.h>' \
	'int main(void) { return LANDLOCK_ACCESS_FS_EXECUTE != 1 || __NR_landlock_create_ruleset == 0; }' >"$t/k.c"
# shellcheck disable=SC2086
run "$DEPS_CC" $DEPS_CPPFLAGS -o "$t/k" "$t/k.c"
rm -rf "$t"
