"""Cases: attacks from the adversarial pass (issue 17), each reproduced as the agent would run
it, as PID 1 over the test rootfs. Each case fails on a supervisor without the fix.
"""

import harness as h
from harness import check
from suite import sv, test

WEIRD_EXE = "/tmp/x -> good:443 [policy:canary"


@test()
def executable_path_in_proxy_log_lines_is_quoted_when_it_could_pass_for_log_syntax():
    # A binary named to forge the rest of an OCSF line: it must appear as one quoted token.
    r = sv(["--", "sh", "-c", "cp /usr/local/bin/proxyconnect '%s' && '%s' 10.0.0.1:443"
            % (WEIRD_EXE, WEIRD_EXE)], timeout=20)
    lines = [l for l in r.err.splitlines() if "NET:OPEN" in l and "DENIED" in l]
    check(lines, "no DENIED line for the CONNECT", r)
    check('DENIED "%s"(' % WEIRD_EXE in lines[0],
          "the executable path is not one quoted token: %r" % lines[0], r)
    check(" -> good:443 [policy:canary(" not in lines[0], "the forged text reads as log syntax",
          r)
