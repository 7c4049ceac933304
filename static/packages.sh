#!/bin/sh
# Install the Debian packages a build ("build") or a full test run ("test") needs, and only
# those that are missing. Runs as root on Debian 12; never downloads from anywhere else.
set -eu

build_pkgs="make gcc musl-tools dpkg-dev file binutils ca-certificates flex bison gperf cmake"
test_pkgs="$build_pkgs check pkg-config libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev
  busybox-static runc tini python3 clang libclang-rt-14-dev cppcheck clang-tidy util-linux
  iproute2 procps libmbedtls-dev curl"

run_pkgs="$build_pkgs busybox-static python3 util-linux"

case "${1:-build}" in
build) want=$build_pkgs ;;
run) want=$run_pkgs ;;
test) want=$test_pkgs ;;
*) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "packages.sh: missing Debian packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "packages.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
