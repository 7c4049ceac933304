#!/bin/sh
# protobuf-c (BSD-2-Clause): the C runtime only (libprotobuf-c.a +
# protobuf-c/protobuf-c.h), which the generated *.pb-c.c code calls.
# --disable-protoc: the protoc-c code generator (C++, needs libprotobuf) is
# not built; the Makefile runs Debian's protobuf-c-compiler at build time.
. "$(dirname "$0")/lib.sh"
dep_begin protobuf-c
need_pkgs
fetch_source protobuf-c
B=$SRC/_build
configure_autotools "$SRC" "$B" --disable-protoc
mk "$B" protobuf-c/libprotobuf-c.la
mk "$B" install-libLTLIBRARIES install-nobase_includeHEADERS
drop_la
check_archive libprotobuf-c.a
