#!/bin/sh
# Start-up benchmark: our supervisor vs tini (Debian's tini-static when present), same run,
# interleaved, RUNS times each. Prints medians/p95, the ratios, binary sizes and peak RSS. With
# NOFENCE (build/bench/supervisor-nofence, `make bench` builds it) it also runs the same binary
# without the mount fence and prints what the fence adds.
# Usage: bench/startup.sh build/supervisor [RUNS [NOFENCE]]
set -eu
sup=$(realpath "$1")
runs=${2:-200}
nofence=${3:-}
mkdir -p build/bench
out=$(realpath build/bench)
musl-gcc -static -O2 -o "$out/stamp" bench/stamp.c
musl-gcc -static -O2 -o "$out/startup" bench/startup.c
tini=$(command -v tini-static || command -v tini)
# The host has no sandbox user: the agent gets a numeric identity, as Kubernetes drivers pass it.
export OPENSHELL_SANDBOX_UID=65534 OPENSHELL_SANDBOX_GID=65534
# shellcheck disable=SC2046
"$out/startup" "$runs" "$out/stamp" \
	bare -- \
	supervisor "$sup" --log-level error -- \
	$([ -n "$nofence" ] && echo "supervisor_nofence $(realpath "$nofence") --log-level error --") \
	tini "$tini" -s -- > "$out/startup.txt"
cat "$out/startup.txt"
awk -v sup_size="$(stat -c %s "$sup")" -v tini_size="$(stat -c %s "$tini")" '
	{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[$1, kv[1]] = kv[2] } }
	END {
		sb = v["supervisor", "start_median_us"] - v["bare", "start_median_us"]
		tb = v["tini", "start_median_us"] - v["bare", "start_median_us"]
		printf "ratio start_median supervisor/tini = %.2f (added over bare exec: %.0f us vs %.0f us)\n",
			v["supervisor", "start_median_us"] / v["tini", "start_median_us"], sb, tb
		printf "ratio start_p95 supervisor/tini = %.2f\n",
			v["supervisor", "start_p95_us"] / v["tini", "start_p95_us"]
		printf "ratio total_median supervisor/tini = %.2f\n",
			v["supervisor", "total_median_us"] / v["tini", "total_median_us"]
		printf "ratio max_rss supervisor/tini = %.2f (%d KiB vs %d KiB)\n",
			v["supervisor", "max_rss_kb"] / v["tini", "max_rss_kb"],
			v["supervisor", "max_rss_kb"], v["tini", "max_rss_kb"]
		printf "binary size: supervisor %d bytes, tini %d bytes (ratio %.2f)\n",
			sup_size, tini_size, sup_size / tini_size
		if (("supervisor_nofence", "start_median_us") in v)
			printf "mount fence: start median %+.0f us (%.0f vs %.0f), p95 %+.0f us, " \
				"max_rss %+d KiB\n",
				v["supervisor", "start_median_us"] - v["supervisor_nofence", "start_median_us"],
				v["supervisor", "start_median_us"], v["supervisor_nofence", "start_median_us"],
				v["supervisor", "start_p95_us"] - v["supervisor_nofence", "start_p95_us"],
				v["supervisor", "max_rss_kb"] - v["supervisor_nofence", "max_rss_kb"]
	}' "$out/startup.txt" | tee -a "$out/startup.txt"
