#!/bin/sh
# mbed TLS for the glibc unit tests and fuzzers: the same pinned source tree and configuration as
# the product (build/src/mbedtls_<pin>, already patched by build-mbedtls.sh: threading on,
# getrandom on any Linux), compiled with the host gcc into build/deps-host (static archives +
# headers). Tests then exercise the mbedTLS the product ships (3.6, TLS 1.3) instead of
# Debian's libmbedtls-dev. Never installs into build/deps; run by the Makefile after the
# musl build of mbedtls (its stamp), which is what unpacks and patches the tree.
. "$(dirname "$0")/lib.sh"
HOST_DIR=$(_abs "${DEPS_HOST_DIR:-$ROOT/build/deps-host}")
DEP_NAME=mbedtls-host
DEP_VERSION=$(dep_version mbedtls)
SRC=$SRC_DIR/mbedtls_$DEP_VERSION
mkdir -p "$LOG_DIR" "$HOST_DIR"
DEP_LOG=$LOG_DIR/deps-$DEP_NAME.log
printf '  DEP     %s %s\n' "$DEP_NAME" "$DEP_VERSION"
exec 3>&1 4>&2 >"$DEP_LOG" 2>&1
DEP_T0=$(date +%s)
trap '_dep_exit $?' EXIT
[ -f "$SRC/include/mbedtls/mbedtls_config.h" ] || die "$SRC: no mbedtls source (build the musl mbedtls first)"
cmp -s "$SRC/include/mbedtls/mbedtls_config.h" "$DEPS_DIR/include/mbedtls/mbedtls_config.h" ||
	die "$SRC: mbedtls_config.h differs from the product's build/deps copy"
B=$SRC/_build-host
rm -rf "$B" "$HOST_DIR/include/mbedtls" "$HOST_DIR/include/psa" "$HOST_DIR/lib"
mkdir -p "$B"
run env CC="${HOST_CC:-gcc}" cmake -S "$SRC" -B "$B" \
	-DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="${HOST_OPT_CFLAGS:--O2 -g -fPIC}" \
	-DCMAKE_INSTALL_PREFIX="$HOST_DIR" -DCMAKE_INSTALL_LIBDIR="$HOST_DIR/lib" \
	-DCMAKE_INSTALL_INCLUDEDIR="$HOST_DIR/include" \
	-DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DGEN_FILES=OFF \
	-DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
	-DMBEDTLS_FATAL_WARNINGS=OFF
run cmake --build "$B" -j "$JOBS"
run cmake --install "$B"
rm -rf "$HOST_DIR/lib/cmake" "$HOST_DIR/lib/pkgconfig" "$B"
for a in libmbedtls.a libmbedx509.a libmbedcrypto.a; do
	[ -s "$HOST_DIR/lib/$a" ] || die "$HOST_DIR/lib/$a missing"
done
