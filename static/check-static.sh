#!/bin/sh
# check-static.sh BINARY: fail unless BINARY is a fully static ELF (no INTERP
# program header, no DT_NEEDED entries); print its type and size.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 BINARY" >&2; exit 2; }
bin=$1
[ -f "$bin" ] || { echo "check-static: $bin: no such file" >&2; exit 1; }
export LC_ALL=C
hdr=$(readelf -hW "$bin" 2>/dev/null) || { echo "check-static: $bin: not an ELF file" >&2; exit 1; }
phdrs=$(readelf -lW "$bin")
dyn=$(readelf -dW "$bin")
fail=0
if printf '%s\n' "$phdrs" | grep -q '^[[:space:]]*INTERP[[:space:]]'; then
	echo "check-static: $bin has a PT_INTERP header ($(printf '%s\n' "$phdrs" |
		sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p'))" >&2
	fail=1
fi
if printf '%s\n' "$dyn" | grep -q '(NEEDED)'; then
	echo "check-static: $bin needs shared libraries:" >&2
	printf '%s\n' "$dyn" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/  \1/p' >&2
	fail=1
fi
[ $fail -eq 0 ] || exit 1
case $(printf '%s\n' "$hdr" | sed -n 's/^ *Type: *\([A-Z]*\).*/\1/p') in
DYN) kind="static-pie" ;;
EXEC) kind="static (non-PIE)" ;;
*) kind="static ($(printf '%s\n' "$hdr" | sed -n 's/^ *Type: *//p'))" ;;
esac
size=$(wc -c <"$bin")
echo "check-static: $bin: OK, $kind, $size bytes ($(( (size + 1023) / 1024 )) KiB)"
