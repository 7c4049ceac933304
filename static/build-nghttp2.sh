#!/bin/sh
# nghttp2 (MIT): the HTTP/2 framing library only (libnghttp2.a + nghttp2/*.h),
# for the gateway's gRPC client. CMake with ENABLE_LIB_ONLY (the CMake form of
# configure's --enable-lib-only): no apps (nghttp, nghttpx, h2load), no hpack
# tools, examples, python, docs or tests, so nothing looks for OpenSSL, libev,
# c-ares, zlib, jansson or libxml2. CMake, not autotools: Debian's orig
# tarball is a git export without a generated configure script.
. "$(dirname "$0")/lib.sh"
dep_begin nghttp2
need_pkgs cmake
fetch_source nghttp2
B=$SRC/_build
configure_cmake "$SRC" "$B" \
	-DENABLE_LIB_ONLY=ON -DENABLE_APP=OFF -DENABLE_HPACK_TOOLS=OFF -DENABLE_EXAMPLES=OFF \
	-DENABLE_DOC=OFF -DENABLE_FAILMALLOC=OFF -DENABLE_WERROR=OFF -DENABLE_DEBUG=OFF \
	-DBUILD_SHARED_LIBS=OFF -DBUILD_STATIC_LIBS=ON -DBUILD_TESTING=OFF \
	-DWITH_LIBXML2=OFF -DWITH_JEMALLOC=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Python3=ON
run cmake --build "$B" -j "$JOBS" -- VERBOSE=1
run cmake --install "$B"
# CMake package and pkg-config files are unused here (the Makefile names the
# archive); so are the README and the OCSP helper script it installs.
rm -rf "$DEPS_DIR/lib/cmake" "$DEPS_DIR/lib/pkgconfig/libnghttp2.pc" \
	"$DEPS_DIR/share/doc/nghttp2" "$DEPS_DIR/share/nghttp2"
rmdir "$DEPS_DIR/share/doc" "$DEPS_DIR/share" 2>/dev/null || true
check_archive libnghttp2.a
