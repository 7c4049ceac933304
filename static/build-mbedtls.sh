#!/bin/sh
# mbed TLS (Apache-2.0 OR GPL-2.0-or-later): CMake with static/musl.cmake;
# only the three static libraries + headers. No programs, tests, shared
# libraries or generated-file regeneration (the release tarball ships them,
# so no python is needed). Default configuration (mbedtls_config.h as
# released): no MBEDTLS_THREADING_C, platform entropy from /dev/urandom on
# musl (see static/README.md).
. "$(dirname "$0")/lib.sh"
dep_begin mbedtls
need_pkgs cmake
fetch_source mbedtls
B=$SRC/_build
configure_cmake "$SRC" "$B" \
	-DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DGEN_FILES=OFF \
	-DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
	-DMBEDTLS_FATAL_WARNINGS=OFF
run cmake --build "$B" -j "$JOBS" -- VERBOSE=1
run cmake --install "$B"
# CMake package files and pkg-config files are unused here; keep the tree lean.
rm -rf "$DEPS_DIR/lib/cmake"
for a in libmbedtls.a libmbedx509.a libmbedcrypto.a; do check_archive "$a"; done
