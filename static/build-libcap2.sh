#!/bin/sh
# libcap (BSD-3-Clause or GPL-2.0): libcap's own Makefile; only libcap.a and
# <sys/capability.h>. No libpsx, Go packages, PAM module, setcap/getcap
# tools, tests or man pages.
# _makenames (generates cap_names.h) runs on the build machine, so it is
# compiled with the host gcc (BUILD_CC=gcc); the library itself with musl.
# USE_GPERF=no: the optional gperf name table is skipped (same API).
. "$(dirname "$0")/lib.sh"
dep_begin libcap2
need_pkgs # base tools only
fetch_source libcap2
args="CC=$DEPS_CC BUILD_CC=gcc BUILD_COPTS=-O2 AR=ar RANLIB=ranlib
	SHARED=no PAM_CAP=no GOLANG=no USE_GPERF=no lib=lib prefix=$DEPS_DIR"
# COPTS, not CFLAGS: libcap appends its warnings/defines to CFLAGS.
# shellcheck disable=SC2086
mk "$SRC/libcap" $args COPTS="$DEPS_OPT_CFLAGS" libcap.a
install -D -m 0644 "$SRC/libcap/libcap.a" "$DEPS_DIR/lib/libcap.a"
install -D -m 0644 "$SRC/libcap/include/sys/capability.h" "$DEPS_DIR/include/sys/capability.h"
check_archive libcap.a
