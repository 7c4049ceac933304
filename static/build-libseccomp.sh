#!/bin/sh
# libseccomp (LGPL-2.1): autotools; only src/libseccomp.a + the two headers.
# No python bindings, tools, tests or man pages. src/syscalls.perf.c ships
# pre-generated in the tarball, but configure insists on gperf anyway.
. "$(dirname "$0")/lib.sh"
dep_begin libseccomp
need_pkgs gperf
fetch_source libseccomp
B=$SRC/_build
configure_autotools "$SRC" "$B" --disable-python
mk "$B/include"
mk "$B/src" libseccomp.la
mk "$B/src" install-libLTLIBRARIES
mk "$B/include" install-includeHEADERS
drop_la
check_archive libseccomp.a
