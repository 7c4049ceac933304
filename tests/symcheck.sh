#!/bin/sh
# Every global symbol our objects define must carry a module prefix (STYLE.md "Names"), so
# nothing collides with musl or a static dependency. Usage: symcheck.sh OBJ...
# The Makefile passes our objects only: protoc-c's output (build/obj/gen) is named by its proto
# package (openshell__v1__...), like a dependency's names are by the dependency.
set -eu
bad=$(nm -g --defined-only "$@" 2>/dev/null | awk 'NF == 3 { print $3 }' |
	grep -Ev '^(sv_|pol_|ll_|nns_|px_|gw_|sshd_|main$)' || true)
if [ -n "$bad" ]; then
	echo "symcheck: global symbols without a module prefix:" >&2
	echo "$bad" | sed 's/^/  /' >&2
	echo "symcheck: 0 passed, 1 failed"
	exit 1
fi
echo "symcheck: 1 passed, 0 failed"
