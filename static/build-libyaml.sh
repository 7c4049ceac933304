#!/bin/sh
# libyaml (MIT): the YAML 1.1 reader, scanner and parser behind the YAML policy loader
# (supervisor/policy/policy_yaml.c uses only the event API). The src/*.c files are compiled
# straight into libyaml.a with the version macros its configure would have written into
# config.h (no autotools run: the parser needs no other configuration on Linux). The emitter and
# document loader come along for a complete archive; the linker pulls in only what is called.
# Debian's patch series is applied (0.2.5-2 has none).
. "$(dirname "$0")/lib.sh"
dep_begin libyaml
need_pkgs # base tools only
fetch_source libyaml
B=$SRC/_build
rm -rf "$B"
mkdir -p "$B"
# The release's version, as configure.ac spells it (AC_INIT and YAML_{MAJOR,MINOR,PATCH}).
V=$(sed -n 's/^m4_define(\[YAML_\(MAJOR\|MINOR\|PATCH\)\], *\([0-9]*\)).*/\1=\2/p' \
	"$SRC/configure.ac" | tr '\n' ' ')
eval "$V"
[ -n "${MAJOR:-}" ] && [ -n "${MINOR:-}" ] && [ -n "${PATCH:-}" ] ||
	die "cannot read the version from configure.ac"
VS="$MAJOR.$MINOR.$PATCH"
echo "libyaml upstream version $VS"
for f in api reader scanner parser loader writer emitter dumper; do
	# shellcheck disable=SC2086
	run "$DEPS_CC" $DEPS_OPT_CFLAGS $DEPS_CPPFLAGS -I"$SRC/include" \
		-DYAML_VERSION_MAJOR="$MAJOR" -DYAML_VERSION_MINOR="$MINOR" \
		-DYAML_VERSION_PATCH="$PATCH" -DYAML_VERSION_STRING="\"$VS\"" \
		-c "$SRC/src/$f.c" -o "$B/$f.o"
done
run ar rcs "$B/libyaml.a" "$B"/*.o
install -D -m 0644 "$B/libyaml.a" "$DEPS_DIR/lib/libyaml.a"
install -D -m 0644 "$SRC/include/yaml.h" "$DEPS_DIR/include/yaml.h"
check_archive libyaml.a
