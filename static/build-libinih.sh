#!/bin/sh
# inih (BSD-3-Clause): a single ini.c compiled straight into libinih.a with
# the compile-time options in $INIH_DEFINES (set in static/deps.mk; callers
# must compile with the same ones, INI_HANDLER_LINENO changes the handler
# prototype). Built from the pristine upstream source (--skip-patches):
# Debian's patches turn the compile-time options into mutable runtime
# globals and are about meson/soname/C++ (INIReader), none of which we want.
# The installed ini.h gets the options baked in as defaults, so even a
# caller that forgets $(INIH_DEFINES) sees the right handler prototype, and
# one that asks for a different INI_HANDLER_LINENO fails to compile.
. "$(dirname "$0")/lib.sh"
: "${INIH_DEFINES:?INIH_DEFINES must be set (static/deps.mk passes it)}"
dep_begin libinih
need_pkgs # base tools only
fetch_source libinih no
B=$SRC/_build
rm -rf "$B"
mkdir -p "$B"
# shellcheck disable=SC2086
run "$DEPS_CC" $DEPS_OPT_CFLAGS $DEPS_CPPFLAGS -Wall -Wextra $INIH_DEFINES \
	-c "$SRC/ini.c" -o "$B/ini.o"
run ar rcs "$B/libinih.a" "$B/ini.o"
install -D -m 0644 "$B/libinih.a" "$DEPS_DIR/lib/libinih.a"

{
	echo "/* Installed by static/build-libinih.sh: libinih.a was built with"
	echo " *   $INIH_DEFINES"
	echo " * These are the defaults below; INI_HANDLER_LINENO must not differ. */"
	for d in $INIH_DEFINES; do
		case $d in
		-D*=*) n=${d#-D}; v=${n#*=}; n=${n%%=*} ;;
		-D*) n=${d#-D}; v=1 ;;
		*) continue ;;
		esac
		printf '#ifndef %s\n#define %s %s\n#endif\n' "$n" "$n" "$v"
		if [ "$n" = INI_HANDLER_LINENO ]; then
			# shellcheck disable=SC2016 # $(INIH_DEFINES) is literal text
			printf '#if INI_HANDLER_LINENO != %s\n#error "libinih.a was built with INI_HANDLER_LINENO=%s; use $(INIH_DEFINES)"\n#endif\n' "$v" "$v"
		fi
	done
	echo
	cat "$SRC/ini.h"
} >"$B/ini.h"
install -D -m 0644 "$B/ini.h" "$DEPS_DIR/include/ini.h"
check_archive libinih.a
