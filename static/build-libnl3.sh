#!/bin/sh
# libnl (LGPL-2.1): autotools; only lib/libnl-3.a and lib/libnl-route-3.a
# plus the public headers (include/libnl3/netlink/...). No CLI tools/library,
# genl/nf/idiag/xfrm libraries, tests or man pages.
# The route library's pktloc/ematch parsers are generated from .l/.y files
# that the tarball does not ship pre-generated: flex and bison are required.
# --sysconfdir=/etc: libnl bakes $sysconfdir/libnl/{classid,pktloc} into the
# library; it must not point into the build tree.
. "$(dirname "$0")/lib.sh"
dep_begin libnl3
need_pkgs flex bison
fetch_source libnl3
B=$SRC/_build
configure_autotools "$SRC" "$B" --sysconfdir=/etc --disable-cli --disable-debug
mk "$B" lib/libnl-3.la lib/libnl-route-3.la
mk "$B" lib_LTLIBRARIES="lib/libnl-3.la lib/libnl-route-3.la" install-libLTLIBRARIES
# Install every public header group except the CLI one (no libnl-cli here).
hdr_targets=$(sed -n 's/^\(install-libnlinclude_netlink[a-z_]*HEADERS\):.*/\1/p' "$B/Makefile" |
	grep -v '_cli' | sort -u)
[ -n "$hdr_targets" ] || die "no header install targets found in libnl's Makefile"
# shellcheck disable=SC2086
mk "$B" $hdr_targets
drop_la
check_archive libnl-3.a
check_archive libnl-route-3.a
