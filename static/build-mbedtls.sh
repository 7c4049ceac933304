#!/bin/sh
# mbed TLS (Apache-2.0 OR GPL-2.0-or-later): CMake with static/musl.cmake;
# only the three static libraries + headers. No programs, tests, shared
# libraries or generated-file regeneration (the release tarball ships them,
# so no python is needed). Upstream's default configuration
# (mbedtls_config.h as released) with two changes (see static/README.md):
# - MBEDTLS_THREADING_C + MBEDTLS_THREADING_PTHREAD: libssh's mbedTLS backend
#   refuses to initialise (ssh_init fails) in a pthread build without them,
#   and its one DRBG is shared by every SSH session.
# - the platform entropy source uses getrandom(2) on musl too (upstream only
#   does so with glibc and reads /dev/urandom otherwise), so neither legacy
#   entropy contexts nor PSA (TLS 1.3) need /dev/urandom.
# The installed mbedtls_config.h carries the change, so users see it too.
# Optimised -O2 rather than the -Os every other dependency gets: the proxy's TLS termination
# makes a P-256 key and signature per leaf and per handshake, and -O2 cuts their CPU time by
# 12-14% for ~120 KB of binary (measured, static/README.md). CMake's MinSizeRel flags come last
# on the command line, so they carry the -O2.
. "$(dirname "$0")/lib.sh"
dep_begin mbedtls
need_pkgs cmake
fetch_source mbedtls
cfg=$SRC/include/mbedtls/mbedtls_config.h
run sed -i -e 's|^//\(#define MBEDTLS_THREADING_C\)$|\1|' \
	-e 's|^//\(#define MBEDTLS_THREADING_PTHREAD\)$|\1|' "$cfg"
[ "$(grep -c -E '^#define MBEDTLS_THREADING_(C|PTHREAD)$' "$cfg")" -eq 2 ] ||
	die "could not enable MBEDTLS_THREADING_C/PTHREAD in $cfg"
ep=$SRC/library/entropy_poll.c
glibc_only='^#if ((defined(__linux__) && defined(__GLIBC__)) || defined(__midipix__))$'
run sed -i "s/$glibc_only/#if (defined(__linux__) || defined(__midipix__))/" "$ep"
grep -q '^#if (defined(__linux__) || defined(__midipix__))$' "$ep" ||
	die "could not enable getrandom() for musl in $ep"
B=$SRC/_build
configure_cmake "$SRC" "$B" \
	-DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DGEN_FILES=OFF \
	-DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
	-DMBEDTLS_FATAL_WARNINGS=OFF \
	-DCMAKE_C_FLAGS_MINSIZEREL="-O2 -DNDEBUG"
run cmake --build "$B" -j "$JOBS" -- VERBOSE=1
run cmake --install "$B"
# CMake package files and pkg-config files are unused here; keep the tree lean.
rm -rf "$DEPS_DIR/lib/cmake"
for a in libmbedtls.a libmbedx509.a libmbedcrypto.a; do check_archive "$a"; done
# getrandom(2) really is compiled in: entropy_poll.o calls syscall().
nm -A "$DEPS_DIR/lib/libmbedcrypto.a" 2>/dev/null | grep -q 'entropy_poll.c.o: *U syscall$' ||
	die "libmbedcrypto.a: entropy_poll does not call syscall(), getrandom() not compiled in"
