"""Cases: the image's policy synced to a gateway that has none (UpdateConfig, contract §3.4),
the gateway's settings (ocsf_json_enabled, contract §10-11), and policy binaries that are
symlinks (resolved inside the sandbox's root, contract §8), with the supervisor as PID 1.

They reuse cases_policy_yaml's private rootfs (its /etc/openshell holds only what a case writes),
its fake internet (10.99.0.2: HTTP on 8080, echo on 7000) and the static `proxyconnect` agent.
"""

import glob
import json
import os
import time

import harness as h
from harness import check
from suite import test

import cases_policy_yaml as py
import gateway as g  # cases_policy_yaml put tests/gateway on the path

NAME = "sb-sync-name"


def gateway_env(gw, sandbox_id):
    return {"OPENSHELL_ENDPOINT": gw.endpoint, "OPENSHELL_SANDBOX_ID": sandbox_id,
            "OPENSHELL_SANDBOX": NAME, "OPENSHELL_SANDBOX_TOKEN": "it-token-sync",
            "OPENSHELL_POLICY_POLL_INTERVAL_SECS": "1"}


@test()
def gateway_without_a_policy_gets_the_image_yaml_through_update_config():
    gw = g.Gateway(sandbox_id="sb-sync")
    try:
        gw.set_policy(None)
        r = py.run({"/etc/openshell/policy.yaml": py.ALLOW_8080},
                   ["--", "sh", "-c", py.CONNECTS], extra_env=gateway_env(gw, "sb-sync"))
        py.allowed_8080_denied_7000(r)
        ups = [e["message"] for e in gw.events("UpdateConfig", "message")]
        check(len(ups) == 1, "%d UpdateConfig calls, not 1" % len(ups), r)
        up = ups[0]
        check(up.get("name") == NAME, "UpdateConfig name %r, not OPENSHELL_SANDBOX" %
              up.get("name"), r)
        rule = up.get("policy", {}).get("network_policies", {}).get("fake_http", {})
        check([e.get("host") for e in rule.get("endpoints", [])] == ["10.99.0.2"] and
              [b.get("path") for b in rule.get("binaries", [])] == [py.HELPER],
              "UpdateConfig does not carry the YAML's rule: %r" % up.get("policy"), r)
        # The baseline the image has went with it (contract §3.3: enrich, then sync).
        ro = up.get("policy", {}).get("filesystem", {}).get("read_only", [])
        check("/usr" in ro and "/proc" in ro, "the baseline was not synced: %r" % ro, r)
        gets = gw.events("GetSandboxConfig", "call")
        check(len(gets) >= 2 and gets[1]["seq"] > gw.events("UpdateConfig", "call")[0]["seq"],
              "the policy was not re-fetched after the sync", r)
        st = [e["message"] for e in gw.events("ReportPolicyStatus", "message")]
        # set_policy(None) made version 1; the sync stored version 2.
        check(any(s.get("version") == gw.policy_version == 2 and
                  s.get("status") == "POLICY_STATUS_LOADED" for s in st),
              "the synced revision was not acknowledged: %r" % st, r)
    finally:
        gw.stop()


@test()
def gateway_without_a_policy_and_without_a_sandbox_name_does_not_start():
    gw = g.Gateway(sandbox_id="sb-sync")
    try:
        env = gateway_env(gw, "sb-sync")
        del env["OPENSHELL_SANDBOX"]
        r = py.run({"/etc/openshell/policy.yaml": py.ALLOW_8080}, ["--", "echo", "RAN"],
                   extra_env=env)
        check(r.rc == 1 and "RAN" not in r.out, "the sandbox ran with a policy the gateway "
              "does not know", r)
        check("OPENSHELL_SANDBOX" in r.err, "the error does not name OPENSHELL_SANDBOX", r)
        check(not gw.events("UpdateConfig"), "UpdateConfig was called without a name", r)
    finally:
        gw.stop()


LINKED = """\
version: 1
network_policies:
  fake_http:
    name: fake_http
    endpoints:
      - { host: 10.99.0.2, port: 8080 }
    binaries:
      - { path: /usr/local/bin/pc-link }
      - { path: /usr/local/bin/pc-dangling }
"""


def make_links():
    root = py.rootfs({})
    d = os.path.join(root, "usr", "local", "bin")
    for name, target in (("pc-link", "proxyconnect"), ("pc-dangling", "nowhere")):
        p = os.path.join(d, name)
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(target, p)


@test()
def a_rule_naming_a_symlinked_binary_matches_the_real_exe():
    make_links()
    # The kernel reports /proc/<pid>/exe as /usr/local/bin/proxyconnect, never pc-link.
    r = py.run({"/etc/openshell/policy.yaml": LINKED},
               ["--", "sh", "-c", "pc-link 10.99.0.2:8080; pc-link 10.99.0.2:7000"])
    py.allowed_8080_denied_7000(r)
    check("policy_binary_resolved" in r.err or "symlink resolved" in r.err,
          "the resolution was not logged", r)
    check("/usr/local/bin/pc-dangling" in r.err and "does not exist" in r.err,
          "the dangling link was not logged", r)


@test()
def ocsf_json_enabled_setting_writes_the_ocsf_jsonl_file():
    gw = g.Gateway(sandbox_id="sb-sync-ocsf")
    root = py.rootfs({})
    pattern = os.path.join(root, "var", "log", "openshell-ocsf.*.log")
    for old in glob.glob(pattern):
        os.unlink(old)
    try:
        gw.set_policy({"network_policies": {"fake_http": {
            "endpoints": [{"host": "10.99.0.2", "port": 8080}],
            "binaries": [{"path": py.HELPER}]}}})
        gw.settings = {"ocsf_json_enabled": True}
        r = py.run({}, ["--", "sh", "-c", py.CONNECTS], extra_env=gateway_env(gw, "sb-sync-ocsf"))
        py.allowed_8080_denied_7000(r)
        files = glob.glob(pattern)
        check(len(files) == 1, "no OCSF JSONL file under /var/log: %r" % files, r)
        with open(files[0]) as f:
            recs = [json.loads(l) for l in f if l.strip()]
        check(recs and all("class_uid" in x for x in recs), "records without class_uid", r)
        check(any(x.get("class_uid") == 4001 for x in recs),
              "the denied CONNECT is not a network activity record: %r" % recs[:3], r)
        # Off again: the same run writes no file.
        for old in glob.glob(pattern):
            os.unlink(old)
        gw.settings = {"ocsf_json_enabled": False}
        r = py.run({}, ["--", "sh", "-c", py.CONNECTS], extra_env=gateway_env(gw, "sb-sync-ocsf"))
        py.allowed_8080_denied_7000(r)
        check(not glob.glob(pattern), "the OCSF JSONL file was written with the setting off", r)
    finally:
        gw.stop()


@test()
def a_gateway_rule_naming_a_symlinked_binary_matches_after_a_reload():
    make_links()
    py.fake_internet()
    rule = {"endpoints": [{"host": "10.99.0.2", "port": 8080}],
            "binaries": [{"path": "/usr/local/bin/pc-link"}]}
    other = {"endpoints": [{"host": "example.com", "port": 443}],
             "binaries": [{"path": py.HELPER}]}
    gw = g.Gateway(sandbox_id="sb-sync-link")
    run = None
    try:
        gw.set_policy({"network_policies": {"other": other}})
        loop = "i=0; while [ $i -lt 200 ]; do pc-link 10.99.0.2:8080; sleep 0.2; i=$((i+1)); done"
        run = h.start_pid1(py.rootfs({}), ["--log-level", "info", "--", "sh", "-c", loop],
                           extra_env=gateway_env(gw, "sb-sync-link"))
        if not run.wait_stdout("status=403", 15):
            raise h.Fail("the first CONNECT was not denied\n" + run.finish(0.1).describe())
        mark = len(run.out.data())
        # The new generation names the link; the kernel reports the target: the proxy child
        # must have been given both.
        gw.set_policy({"network_policies": {"other": other, "linked": rule}})
        deadline = time.monotonic() + 6
        ok = False
        while time.monotonic() < deadline and not ok:
            ok = b"status=200" in run.out.data()[mark:]
            time.sleep(0.1)
        if not ok:
            raise h.Fail("a reloaded rule naming a symlink did not allow its target\n" +
                         run.finish(0.1).describe())
    finally:
        if run and run.proc.poll() is None:
            run.kill()
        gw.stop()
