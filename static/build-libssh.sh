#!/bin/sh
# libssh (LGPL-2.1): the SSH library behind the sandbox's SSH server
# (session/ssh/sshd_*), as libssh.a + libssh/*.h. CMake with static/musl.cmake,
# crypto from our static mbedTLS (WITH_MBEDTLS; built first, DEPS_AFTER in
# deps.mk), server and SFTP on, pthread threading (needs mbedTLS's
# MBEDTLS_THREADING_PTHREAD, see build-mbedtls.sh). Off: GSSAPI, zlib, pcap,
# NaCl (curve25519 comes from mbedTLS), PKCS#11, examples, tests, symbol
# versioning, call tracing, and WITH_EXEC (client config "ProxyCommand"/
# "Match exec": a server never needs to run commands from a config file).
. "$(dirname "$0")/lib.sh"
dep_begin libssh
need_pkgs cmake
fetch_source libssh
# A direct-tcpip (or forwarded-tcpip) port is a uint32 on the wire; libssh casts it to 16 bits,
# so port 74536 would reach the server as 9000. Out-of-range ports become 0 instead, which the
# server (session/ssh/sshd_forward.c) refuses as out of range.
msgs=$SRC/src/messages.c
run sed -i 's#^\( *msg->channel_request_open\.\(destination\|originator\)_port = \)(uint16_t) \(destination\|originator\)_port;$#\1\3_port > 65535 ? 0 : (uint16_t) \3_port;#' "$msgs"
[ "$(grep -c 'destination_port > 65535 ? 0 : (uint16_t)' "$msgs")" -eq 2 ] ||
	die "could not bound the channel-open ports in $msgs"
B=$SRC/_build
configure_cmake "$SRC" "$B" \
	-DWITH_MBEDTLS=ON -DWITH_GCRYPT=OFF -DWITH_SERVER=ON -DWITH_SFTP=ON -DWITH_GEX=ON \
	-DWITH_GSSAPI=OFF -DWITH_ZLIB=OFF -DWITH_PCAP=OFF -DWITH_NACL=OFF \
	-DWITH_PKCS11_URI=OFF -DWITH_PKCS11_PROVIDER=OFF -DWITH_EXEC=OFF \
	-DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF -DCLIENT_TESTING=OFF -DSERVER_TESTING=OFF \
	-DGSSAPI_TESTING=OFF -DWITH_BENCHMARKS=OFF -DFUZZ_TESTING=OFF \
	-DWITH_SYMBOL_VERSIONING=OFF -DWITH_DEBUG_CALLTRACE=OFF -DWITH_INTERNAL_DOC=OFF \
	-DWITH_INSECURE_NONE=OFF -DWITH_BLOWFISH_CIPHER=OFF -DPICKY_DEVELOPER=OFF \
	-DCMAKE_DISABLE_FIND_PACKAGE_Doxygen=ON -DCMAKE_DISABLE_FIND_PACKAGE_ABIMap=ON \
	-DCMAKE_DISABLE_FIND_PACKAGE_Argp=ON
# The configure summary must show what we asked for.
grep -q 'libmbedTLS support: ON' "$DEP_LOG" || die "libssh did not pick up mbedTLS"
grep -q '^#define HAVE_PTHREAD 1' "$B/config.h" || die "libssh built without pthread"
grep -q '^#define HAVE_LIBMBEDCRYPTO 1' "$B/config.h" || die "libssh config.h lacks mbedTLS"
run cmake --build "$B" -j "$JOBS" --target ssh -- VERBOSE=1
run cmake --install "$B"
# CMake package and pkg-config files are unused here (the Makefile names the archive).
rm -rf "$DEPS_DIR/lib/cmake" "$DEPS_DIR/lib/pkgconfig/libssh.pc"
check_archive libssh.a
