#!/bin/sh
# Install the Debian packages a build ("build") or a full test run ("test") needs, and only
# those that are missing. Runs as root on Debian 12; never downloads from anywhere else.
set -eu

# protobuf-c-compiler: protoc-c turns session/proto/*.proto into build/gen/*.pb-c.{c,h}.
build_pkgs="make gcc musl-tools dpkg-dev file binutils ca-certificates flex bison gperf cmake
  protobuf-c-compiler"
# The unit tests link Debian's glibc builds of the static dependencies (the -dev packages).
# The gateway tests run a Python gRPC gateway (grpcio, protobuf, protoc for its stubs) with
# certificates made by openssl; the SSH tests and bench drive the sandbox's SSH server with
# OpenSSH's client and compare against their own sshd (openssh-server). The VM guest tests
# (tests/vm) boot QEMU (qemu-system-x86).
test_pkgs="$build_pkgs check pkg-config libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev
  busybox-static runc tini python3 clang libclang-rt-14-dev cppcheck clang-tidy util-linux
  iproute2 procps libmbedtls-dev curl
  libnghttp2-dev libprotobuf-c-dev libssh-dev libyaml-dev
  python3-grpcio python3-protobuf protobuf-compiler openssl openssh-client openssh-server
  qemu-system-x86"

run_pkgs="$build_pkgs busybox-static python3 util-linux"

# `make vm` (tests/vm, also part of `make check`): QEMU for the guests; the guest kernel
# (linux-image-amd64) is fetched with apt-get download by the suite itself, never installed.
vm_pkgs="$build_pkgs busybox-static python3 qemu-system-x86"

case "${1:-build}" in
build) want=$build_pkgs ;;
run) want=$run_pkgs ;;
test) want=$test_pkgs ;;
vm) want=$vm_pkgs ;;
*) echo "usage: $0 build|run|test|vm" >&2; exit 2 ;;
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
# Packages with a service (openssh-server) start it from their postinst through invoke-rc.d,
# and fail the install if that fails, as it can in a container with no init. Tests start their
# own daemons; while installing, a policy-rc.d (Debian's invoke-rc.d policy hook) that answers
# 101 "action forbidden" keeps every service down, unless the machine already has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap 'rm -f "$policy"' EXIT
	printf '#!/bin/sh\n# packages.sh: no services started while installing\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
