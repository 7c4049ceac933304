#!/bin/sh
# Entry point for `make runc`: the suite itself is run.py (Debian's python3, stdlib only).
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
