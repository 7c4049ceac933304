# shellcheck shell=sh
# Common helpers for static/build-*.sh. Sourced, not executed.
#
# A build script looks like:
#
#     . "$(dirname "$0")/lib.sh"
#     dep_begin libfoo                    # log redirect, one status line
#     need_pkgs flex bison                # Debian packages the build needs
#     fetch_source libfoo                 # -> $SRC (version from versions.mk)
#     ... configure/make/install into $DEPS_DIR with $DEPS_CC/$DEPS_OPT_CFLAGS
#
# Environment (all optional; relative paths are relative to $PWD, defaults
# are relative to the repository root):
#   DEPS_DIR        install prefix            (build/deps)
#   DEPS_SRC_DIR    downloads + source trees  (build/src)
#   DEPS_LOG_DIR    per-dependency logs       (build/logs)
#   DEPS_CC         compiler                  (musl-gcc)
#   DEPS_OPT_CFLAGS optimisation/codegen flags

set -eu

STATIC_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$STATIC_DIR/.." && pwd)

_abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }

DEPS_DIR=$(_abs "${DEPS_DIR:-$ROOT/build/deps}")
SRC_DIR=$(_abs "${DEPS_SRC_DIR:-$ROOT/build/src}")
LOG_DIR=$(_abs "${DEPS_LOG_DIR:-$ROOT/build/logs}")
DEPS_CC=${DEPS_CC:-musl-gcc}
DEPS_OPT_CFLAGS=${DEPS_OPT_CFLAGS:--Os -fPIE -ffunction-sections -fdata-sections}
# Kernel UAPI headers (installed by build-kheaders.sh) + earlier deps.
DEPS_CPPFLAGS="-isystem $DEPS_DIR/include"
JOBS=$(nproc 2>/dev/null || echo 2)
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

# Never let the outer make's flags (-j/jobserver, command-line variables such
# as CFLAGS=... that GNU make forwards through MAKEFLAGS) or the caller's
# compiler variables leak into the dependencies' own build systems.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS \
	CC CFLAGS CPPFLAGS CXXFLAGS LDFLAGS LIBS CPP AR RANLIB 2>/dev/null || true

# Release running here, and the release the pins in versions.mk come from.
HOST_CODENAME=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
PIN_CODENAME=trixie
DEBSRC_FILE=/etc/apt/sources.list.d/supervisor-src.sources

# ---------------------------------------------------------------- logging

_rel() { case $1 in "$ROOT"/*) printf '%s\n' "${1#"$ROOT"/}" ;; *) printf '%s\n' "$1" ;; esac; }

# dep_begin NAME: print one status line, send everything else to the log.
dep_begin() {
	DEP_NAME=$1
	DEP_VERSION=$(dep_version "$1")
	mkdir -p "$LOG_DIR" "$SRC_DIR" "$DEPS_DIR/include" "$DEPS_DIR/lib"
	DEP_LOG=$LOG_DIR/deps-$DEP_NAME.log
	printf '  DEP     %s %s\n' "$DEP_NAME" "$DEP_VERSION"
	exec 3>&1 4>&2 >"$DEP_LOG" 2>&1
	echo "# $(date -u '+%Y-%m-%dT%H:%M:%SZ') building $DEP_NAME $DEP_VERSION into $DEPS_DIR"
	DEP_T0=$(date +%s)
	trap '_dep_exit $?' EXIT
}

_dep_exit() {
	trap - EXIT
	if [ "$1" -eq 0 ]; then
		echo "# done in $(($(date +%s) - DEP_T0))s"
		return 0
	fi
	exec 1>&3 2>&4
	printf '  FAILED  %s (exit %s), log: %s\n' "$DEP_NAME" "$1" "$(_rel "$DEP_LOG")" >&2
	tail -n 25 "$DEP_LOG" | sed 's/^/  | /' >&2
	exit "$1"
}

# note MSG: a line worth showing even in the quiet output (and in the log).
note() {
	echo "NOTE: $*"
	if { true >&3; } 2>/dev/null; then printf '  NOTE    %s: %s\n' "${DEP_NAME:-deps}" "$*" >&3; fi
}

die() { echo "ERROR: $*" >&2; exit 1; }

# run CMD...: echo the command into the log, then run it.
run() { echo "+ $*"; "$@"; }

# ---------------------------------------------------------------- versions

# dep_version NAME: the VERSION_NAME pin from versions.mk.
dep_version() {
	_v=$(sed -n "s/^VERSION_$1[[:space:]]*:\{0,1\}=[[:space:]]*\([^[:space:]#]*\).*/\1/p" \
		"$STATIC_DIR/versions.mk" | tail -n 1)
	[ -n "$_v" ] || die "no VERSION_$1 in static/versions.mk"
	printf '%s\n' "$_v"
}

# ---------------------------------------------------------------- apt

# Serialise everything that touches apt (parallel `make -j` runs several
# build scripts at once).
_apt_locked() {
	mkdir -p "$SRC_DIR"
	(
		flock 9
		"$@"
	) 9>"$SRC_DIR/.apt.lock"
}

_APT_UPDATED=
_apt_update() {
	[ -z "$_APT_UPDATED" ] || return 0
	run apt-get -q update
	_APT_UPDATED=1
}

# _debsrc_in_file FILE SUITE: does FILE enable a deb-src entry for SUITE?
# Handles one-line sources.list syntax and deb822 .sources paragraphs.
_debsrc_in_file() {
	case $1 in
	*.sources)
		awk -v s="$2" 'BEGIN { RS = ""; found = 0 }
			{
				t = 0; su = 0; off = 0
				n = split($0, L, "\n")
				for (i = 1; i <= n; i++) {
					if (L[i] ~ /^[Tt]ypes:/ && L[i] ~ /deb-src/) t = 1
					if (L[i] ~ /^[Ss]uites:/ && (L[i] " ") ~ ("[ \t]" s "[ \t]")) su = 1
					if (L[i] ~ /^[Ee]nabled:[ \t]*[Nn]o/) off = 1
				}
				if (t && su && !off) found = 1
			}
			END { exit !found }' "$1"
		;;
	*)
		grep -Eq "^[[:space:]]*deb-src([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+$2[[:space:]]" "$1"
		;;
	esac
}

# _has_debsrc SUITE: is deb-src for SUITE configured anywhere but our file?
_has_debsrc() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources; do
		{ [ -f "$f" ] && [ "$f" != "$DEBSRC_FILE" ]; } || continue
		_debsrc_in_file "$f" "$1" && return 0
	done
	return 1
}

# Make sure deb-src entries exist for the running release and for the
# release the pins come from (trixie); if any is missing, (re)write our
# deb822 file naming the missing suites, then apt-get update.
_ensure_debsrc() {
	_suites='' _covered=yes
	for s in $HOST_CODENAME $PIN_CODENAME; do
		case " $_suites " in *" $s "*) continue ;; esac
		_has_debsrc "$s" && continue
		_suites="${_suites:+$_suites }$s"
		if ! [ -f "$DEBSRC_FILE" ] || ! _debsrc_in_file "$DEBSRC_FILE" "$s"; then
			_covered=no
		fi
	done
	[ -n "$_suites" ] && [ $_covered = no ] || return 0
	echo "writing $DEBSRC_FILE (Suites: $_suites)"
	printf '%s\n' \
		"# Added by the supervisor repo's static/lib.sh: Debian source packages" \
		"# for the running release and for the release static/versions.mk pins." \
		"Types: deb-src" \
		"URIs: http://deb.debian.org/debian" \
		"Suites: $_suites" \
		"Components: main" \
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$DEBSRC_FILE"
	_APT_UPDATED=
	_apt_update
}

_pkg_installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# Base tools every recipe needs; need_pkgs adds recipe-specific ones.
BASE_PKGS="musl-tools musl-dev dpkg-dev gcc make binutils linux-libc-dev xz-utils patch"

_need_pkgs_locked() {
	_missing=
	for p in $BASE_PKGS "$@"; do
		_pkg_installed "$p" || _missing="$_missing $p"
	done
	[ -n "$_missing" ] || return 0
	echo "installing:$_missing"
	_apt_update
	# shellcheck disable=SC2086
	run apt-get -q -y --no-install-recommends install $_missing
}

# need_pkgs PKG...: install (with apt-get -y) whatever is missing.
need_pkgs() { _apt_locked _need_pkgs_locked "$@"; }

# ---------------------------------------------------------------- sources

# The Checksums-Sha256 lines ("sha256 name") of source PKG at exactly VERSION.
_src_checksums() {
	apt-cache showsrc --only-source "$1" 2>/dev/null | awk -v v="$2" '
		BEGIN { RS = ""; FS = "\n" }
		{
			ver = ""; for (i = 1; i <= NF; i++) if ($i ~ /^Version: /) ver = substr($i, 10)
			if (ver != v || done) next
			in_sums = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Checksums-Sha256:/) { in_sums = 1; continue }
				if (in_sums && $i ~ /^ /) { split($i, a, " "); print a[1], a[3]; continue }
				in_sums = 0
			}
			done = 1
		}'
}

_fetch_locked() {
	_ensure_debsrc
	if [ -z "$(_src_checksums "$1" "$2")" ]; then
		_apt_update
		[ -n "$(_src_checksums "$1" "$2")" ] ||
			die "apt does not know source package $1=$2 (deb-src for $PIN_CODENAME missing?)"
	fi
	_src_checksums "$1" "$2" >"$3/.checksums"
	# Files the archive cannot serve are tolerated here and judged below.
	(cd "$3" && run apt-get -q -o APT::Sandbox::User=root source \
		--download-only --only-source "$1=$2") ||
		echo "apt-get source reported errors; checking what was downloaded"
}

# _apply_series DIR: apply debian/patches/series like dpkg-source (3.0 quilt).
_apply_series() {
	[ -f "$1/debian/patches/series" ] || return 0
	sed -e 's/#.*//' "$1/debian/patches/series" | while read -r p opt; do
		[ -n "$p" ] || continue
		echo "applying debian/patches/$p"
		# shellcheck disable=SC2086 # $opt: optional -pN from the series line
		(cd "$1" && patch -s -N -F 0 --no-backup-if-mismatch ${opt:--p1} <"debian/patches/$p")
	done
}

# fetch_source PKG [patches=yes|no]: download Debian source PKG at its pinned
# version into $SRC_DIR/dl, verify every file against the SHA-256 sums of
# apt's (signed) Sources index, and unpack a fresh tree into $SRC.
#
# Normal path: `apt-get source --download-only PKG=VER` + `dpkg-source -x`.
# Fallback when the archive cannot serve the .dsc (or the Debian tarball):
# unpack the verified orig tarball(s) and, if present, the Debian tarball and
# its quilt series, which is what dpkg-source -x does. The tree's origin is
# written to $SRC/.deps-origin.
fetch_source() {
	_pkg=$1
	_patches=${2:-yes}
	_ver=$(dep_version "$_pkg")
	_nover=${_ver#*:}
	_dl=$SRC_DIR/dl/${_pkg}_$_nover
	SRC=$SRC_DIR/${_pkg}_$_nover
	mkdir -p "$_dl"
	_apt_locked _fetch_locked "$_pkg" "$_ver" "$_dl"

	_dsc='' _orig='' _deb='' _missing=
	while read -r _sum _file; do
		if [ ! -f "$_dl/$_file" ]; then
			# Upstream signatures (.asc) are informational only.
			case $_file in *.asc) ;; *) _missing="$_missing $_file" ;; esac
			continue
		fi
		echo "$_sum  $_dl/$_file" | sha256sum -c --quiet - ||
			die "checksum mismatch for $_file"
		case $_file in
		*.dsc) _dsc=$_file ;;
		*.asc) ;;
		*.debian.tar.*) _deb=$_file ;;
		*.orig.tar.*) _orig=$_file ;;
		*.orig-*.tar.*) ;;
		*.tar.*) [ -n "$_orig" ] || _orig=$_file ;; # native package
		esac
	done <"$_dl/.checksums"

	rm -rf "$SRC"
	_skip=''
	[ "$_patches" = yes ] || _skip=--skip-patches
	if [ -n "$_dsc" ] && [ -z "$_missing" ]; then
		run dpkg-source $_skip -x "$_dl/$_dsc" "$SRC"
		echo "dpkg-source -x $_dsc${_skip:+ ($_skip)}" >"$SRC/.deps-origin"
		return 0
	fi

	[ -n "$_orig" ] || die "upstream tarball of $_pkg $_ver not available (missing:$_missing)"
	mkdir -p "$SRC"
	run tar -xf "$_dl/$_orig" -C "$SRC" --strip-components=1 --no-same-owner
	# shellcheck disable=SC2013 # file names have no spaces
	for _c in $(sed -n 's/^[0-9a-f]* \(.*\.orig-[^.]*\.tar\.[a-z0-9]*\)$/\1/p' "$_dl/.checksums"); do
		[ -f "$_dl/$_c" ] || die "missing component tarball $_c"
		_cn=$(echo "$_c" | sed 's/.*\.orig-\([^.]*\)\.tar\..*/\1/')
		mkdir -p "$SRC/$_cn"
		run tar -xf "$_dl/$_c" -C "$SRC/$_cn" --strip-components=1 --no-same-owner
	done
	if [ -n "$_deb" ]; then
		run tar -xf "$_dl/$_deb" -C "$SRC" --no-same-owner
		if [ "$_patches" = yes ]; then _apply_series "$SRC"; fi
		echo "orig + $_deb${_skip:+ (patches skipped)}; .dsc unavailable:$_missing" >"$SRC/.deps-origin"
		note "archive lacks${_missing}; unpacked verified orig + Debian tarball by hand"
	else
		echo "pristine upstream $_orig; unavailable:$_missing" >"$SRC/.deps-origin"
		note "archive lacks${_missing}; building the verified upstream orig tarball WITHOUT Debian patches"
	fi
}

# ---------------------------------------------------------------- building

# configure_autotools SRCDIR BUILDDIR [configure args...]: out-of-tree,
# static only, musl, our flags.
configure_autotools() {
	_s=$1 _b=$2
	shift 2
	rm -rf "$_b"
	mkdir -p "$_b"
	(cd "$_b" && run "$_s/configure" \
		--prefix="$DEPS_DIR" \
		--enable-static --disable-shared \
		--disable-dependency-tracking --disable-silent-rules \
		CC="$DEPS_CC" CFLAGS="$DEPS_OPT_CFLAGS" CPPFLAGS="$DEPS_CPPFLAGS" \
		"$@")
}

# mk DIR [make args...]
mk() {
	_d=$1
	shift
	run make -C "$_d" -j"$JOBS" "$@"
}

# drop_la: libtool archives are useless for us and hold absolute paths.
drop_la() { rm -f "$DEPS_DIR"/lib/*.la; }

# check_archive LIB.a: must exist, be non-empty, and contain only x86-64
# objects built here (sanity check against picking up a host library).
check_archive() {
	[ -s "$DEPS_DIR/lib/$1" ] || die "$1 was not installed"
	echo "installed $DEPS_DIR/lib/$1 ($(wc -c <"$DEPS_DIR/lib/$1") bytes)"
}

# configure_cmake SRCDIR BUILDDIR [cmake args...]: static, MinSizeRel (-Os),
# musl via static/musl.cmake, install prefix $DEPS_DIR.
configure_cmake() {
	_s=$1 _b=$2
	shift 2
	rm -rf "$_b"
	mkdir -p "$_b"
	# Absolute install dirs: CMake resolves relative PATH values against the cwd.
	(cd "$_b" && run env DEPS_DIR="$DEPS_DIR" DEPS_OPT_CFLAGS="$DEPS_OPT_CFLAGS" cmake -S "$_s" -B "$_b" \
		-DCMAKE_TOOLCHAIN_FILE="$STATIC_DIR/musl.cmake" \
		-DDEPS_DIR="$DEPS_DIR" \
		-DCMAKE_BUILD_TYPE=MinSizeRel \
		-DCMAKE_INSTALL_PREFIX="$DEPS_DIR" \
		-DCMAKE_INSTALL_LIBDIR="$DEPS_DIR/lib" \
		-DCMAKE_INSTALL_INCLUDEDIR="$DEPS_DIR/include" \
		-DBUILD_SHARED_LIBS=OFF \
		"$@")
}
