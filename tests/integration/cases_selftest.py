"""Cases: `--self-test [--json]` as PID 1 in the test rootfs, on the host, and under `degrade`.

Here it exits 1: the rootfs has no /sys (cgroup_pids unavailable) and no /dev/kmsg (kmsg
unavailable), while every layer a sandbox needs to start is ok and Landlock is ok at ABI >= 7.
"""

import json
import re

import harness as h
from harness import check
from suite import SUPERVISOR, sv, test

LAYERS = ["pid1", "proc", "capabilities", "privilege_drop", "no_new_privs", "seccomp", "landlock",
          "userns", "pidns", "mountns", "mount_fence", "netns", "netlink", "cgroup_pids", "kmsg",
          "gpu"]
NEEDED = ["proc", "capabilities", "privilege_drop", "no_new_privs", "seccomp", "netns", "netlink"]
STATUSES = ("ok", "degraded", "unavailable")
LINE_RE = re.compile(r"^(\S+) +(ok|degraded|unavailable) +(.*?) *  best_effort: (.*)"
                     r"  hard_requirement: (.*)$")
SUMMARY_RE = re.compile(r"^# exit (\d): ")
DEGRADE = "/usr/local/bin/degrade"


def parse_text(res):
    """{layer: {status, reason, best_effort, hard_requirement}} in report order, and the exit
    the summary line states; fails on any other line."""
    layers, order, stated = {}, [], None
    for line in res.out.splitlines():
        m = LINE_RE.match(line)
        if m:
            name = m.group(1)
            check(name not in layers, "layer %s reported twice" % name, res)
            layers[name] = {"status": m.group(2), "reason": m.group(3),
                            "best_effort": m.group(4), "hard_requirement": m.group(5)}
            order.append(name)
            continue
        s = SUMMARY_RE.match(line)
        check(s is not None and stated is None, "unexpected stdout line %r" % line, res)
        stated = int(s.group(1))
    check(order == LAYERS, "layers %r, want %r" % (order, LAYERS), res)
    check(stated == res.rc, "summary says exit %r, process exited %r" % (stated, res.rc), res)
    for name, l in layers.items():
        check(l["reason"] and l["best_effort"] and l["hard_requirement"],
              "layer %s has an empty column" % name, res)
    return layers


def self_test(args=(), prefix=(), extra_env=None):
    return sv(["--self-test"] + list(args), prefix=prefix, extra_env=extra_env, timeout=30)


def filters_named(reason):
    """How many seccomp filters a userns reason blames (0 when it names none)."""
    m = re.search(r"(\d+) seccomp filter", reason)
    return int(m.group(1)) if m else 0


@test()
def self_test_as_pid1_reports_every_layer_landlock_abi_7_and_exit_1():
    r = self_test()
    layers = parse_text(r)
    check(r.rc == 1, "expected exit 1 (no /sys, no /dev/kmsg in the test rootfs)", r)
    for name in NEEDED:
        check(layers[name]["status"] == "ok", "%s is not ok" % name, r)
    check(layers["pid1"]["status"] == "ok", "pid1 not ok although PID 1", r)
    ll = layers["landlock"]
    m = re.match(r"ABI (\d+)", ll["reason"])
    check(ll["status"] == "ok" and m and int(m.group(1)) >= 7,
          "landlock is not ok at ABI >= 7: %r" % ll, r)
    check(layers["cgroup_pids"]["status"] == "unavailable"
          and "ENOENT" in layers["cgroup_pids"]["reason"],
          "cgroup_pids should be unavailable (no /sys in the rootfs)", r)
    check(layers["kmsg"]["status"] == "unavailable" and "ENOENT" in layers["kmsg"]["reason"],
          "kmsg should be unavailable with ENOENT (no /dev/kmsg in the rootfs)", r)
    check("weaker in: cgroup_pids, kmsg" in r.out, "summary does not name the weaker layers", r)
    check("ERROR" not in r.err, "errors logged during the self-test", r)


@test()
def self_test_json_parses_and_matches_the_text_report():
    text = self_test()
    layers = parse_text(text)
    r = self_test(["--json"])
    check(r.out.endswith("\n") and r.out.count("\n") == 1, "JSON is not one line", r)
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        raise h.Fail("--json output does not parse: %s\n%s" % (e, r.describe()))
    check(set(doc) == {"layers", "exit"}, "top-level keys %r" % sorted(doc), r)
    check(doc["exit"] == r.rc == text.rc,
          "exit %r, rc %r, text rc %r" % (doc["exit"], r.rc, text.rc), r)
    check([l["layer"] for l in doc["layers"]] == LAYERS, "JSON layer order differs", r)
    for l in doc["layers"]:
        check(set(l) == {"layer", "status", "reason", "best_effort", "hard_requirement"},
              "layer keys %r" % sorted(l), r)
        want = dict(layers[l["layer"]], layer=l["layer"])
        if l["layer"] == "netlink":  # other tests may add links between the two runs
            want["reason"] = re.sub(r"\d+", "N", want["reason"])
            l = dict(l, reason=re.sub(r"\d+", "N", l["reason"]))
        check(l == want, "JSON %r differs from text %r" % (l, want), r)


@test()
def self_test_without_landlock_reports_enosys_exit_1_and_hard_requirement_refuses():
    r = self_test(prefix=[DEGRADE, "--no-landlock", "--"])
    layers = parse_text(r)
    ll = layers["landlock"]
    check(ll["status"] == "unavailable" and ll["reason"].startswith("ENOSYS"),
          "landlock line %r" % ll, r)
    check("refuse" in ll["hard_requirement"] and "without Landlock" in ll["best_effort"],
          "landlock actions %r" % ll, r)
    check(r.rc == 1, "a best_effort sandbox still starts without Landlock: expected exit 1", r)
    check(layers["seccomp"]["status"] == "ok", "the outer filter broke the seccomp probe", r)


@test()
def self_test_without_userns_reports_eperm_from_the_seccomp_filter():
    base = parse_text(self_test())["userns"]
    r = self_test(prefix=[DEGRADE, "--no-userns", "--"])
    layers = parse_text(r)
    u = layers["userns"]
    check(u["status"] == "unavailable" and u["reason"].startswith("EPERM"), "userns %r" % u, r)
    check(filters_named(u["reason"]) == filters_named(base["reason"]) + 1,
          "userns reason does not blame the added seccomp filter: %r (without it: %r)"
          % (u["reason"], base["reason"]), r)
    check(layers["landlock"]["status"] == "ok" and layers["netns"]["status"] == "ok",
          "only user namespaces should be denied", r)


@test()
def self_test_without_netns_says_the_agent_network_cannot_be_built():
    r = self_test(prefix=[DEGRADE, "--no-netns", "--"])
    layers = parse_text(r)
    n = layers["netns"]
    check(n["status"] == "unavailable" and n["reason"].startswith("EPERM"), "netns %r" % n, r)
    check(r.rc == 2, "a sandbox cannot start without its network namespace: expected exit 2", r)


@test()
def self_test_without_setuid_setgid_exits_2_and_names_the_capabilities():
    r = self_test(prefix=[DEGRADE, "--drop-caps", "--"])
    layers = parse_text(r)
    check(r.rc == 2, "privilege drop is impossible: expected exit 2", r)
    pd = layers["privilege_drop"]
    check(pd["status"] == "unavailable" and "CAP_SETUID" in pd["reason"]
          and "CAP_SETGID" in pd["reason"], "privilege_drop %r" % pd, r)
    check("refuse" in pd["best_effort"] and "refuse" in pd["hard_requirement"],
          "privilege_drop actions %r" % pd, r)
    caps = layers["capabilities"]
    check(caps["status"] == "unavailable" and "CAP_SETUID" in caps["reason"]
          and "CAP_SYS_ADMIN" not in caps["reason"], "capabilities %r" % caps, r)
    check(layers["no_new_privs"]["reason"].find("already set") >= 0,
          "degrade set no_new_privs; the report should say so", r)


@test()
def self_test_required_pid_limit_missing_exits_2():
    r = self_test(extra_env={"OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT": "1"})
    layers = parse_text(r)
    cg = layers["cgroup_pids"]
    check(r.rc == 2, "OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT with no limit must be fatal", r)
    check(cg["status"] == "unavailable" and "refuse" in cg["best_effort"]
          and "OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT" in cg["hard_requirement"],
          "cgroup_pids %r" % cg, r)


@test(kind="host")
def self_test_not_pid1_reports_pid1_degraded_as_subreaper():
    r = h.run_host([SUPERVISOR, "--self-test"], timeout=30)
    layers = parse_text(r)
    p = layers["pid1"]
    check(p["status"] == "degraded" and "subreaper" in p["reason"]
          and "not PID 1" in p["reason"], "pid1 %r" % p, r)
    check(r.rc in (1, 2), "not PID 1 is at least degraded", r)
