# Pinned Debian source package versions for the static musl dependencies.
#
# This is the single place where versions live: static/deps.mk includes it,
# and static/lib.sh reads it (simple `VERSION_<source-package> := <version>`
# lines only, no make syntax beyond that). The stamp of each dependency
# embeds its version, so changing a line here rebuilds just that dependency.
#
# All pins come from Debian trixie (13) source packages; static/fetch
# adds a deb-src entry for trixie if none exists.

VERSION_libseccomp := 2.6.0-2
VERSION_libnl3     := 3.7.0-2
VERSION_libcap2    := 1:2.75-10+deb13u1
VERSION_libinih    := 59-1
VERSION_mbedtls    := 3.6.6-0.1~deb13u1
VERSION_nghttp2    := 1.64.0-1.1+deb13u2
VERSION_protobuf-c := 1.5.1-1
VERSION_libssh     := 0.11.5-0+deb13u1
VERSION_libyaml    := 0.2.5-2
