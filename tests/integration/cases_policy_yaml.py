"""Cases: OpenShell's YAML policy file, found the way OpenShell finds it (contract §3.4) and
enforced by the egress proxy, with the supervisor as PID 1.

Each case runs over its own copy of the test rootfs whose /etc/openshell and /etc/navigator hold
exactly the files the case writes. The agent is the static `proxyconnect` helper, which asks the
proxy for a CONNECT and prints `status=<code>`; the upstream is the fake internet of
cases_proxy (10.99.0.2: HTTP on 8080, echo on 7000), reachable from the supervisor's namespace.
"""

import os
import shutil
import subprocess

import harness as h
from harness import check
from suite import CTX, REPO, test

import sys
sys.path.insert(0, os.path.join(REPO, "tests", "gateway"))
import gateway as g  # noqa: E402

ROOT = {"path": None}
HELPER = "/usr/local/bin/proxyconnect"
CONNECTS = "proxyconnect 10.99.0.2:8080; proxyconnect 10.99.0.2:7000"

# OpenShell's own layout: flow-style endpoints, a binaries list of mappings.
ALLOW_8080 = """\
version: 1
network_policies:
  fake_http:
    name: fake_http
    endpoints:
      - { host: 10.99.0.2, port: 8080 }
    binaries:
      - { path: /usr/local/bin/proxyconnect }
"""
ALLOW_7000_INI = "[network.echo]\nendpoint = 10.99.0.2:7000\nbinary = /usr/local/bin/proxyconnect\n"


def fake_internet():
    import cases_proxy
    why = cases_proxy.fake_internet()
    if why:
        raise h.Fail(why)


def rootfs(files):
    """A private rootfs copy whose policy directories hold only @files ({inside path: text})."""
    if ROOT["path"] is None:
        ROOT["path"] = os.path.join(CTX.tmpdir, "rootfs-yaml")
        subprocess.run(["cp", "-a", CTX.rootfs, ROOT["path"]], check=True)
    root = ROOT["path"]
    for d in ("etc/openshell", "etc/navigator"):
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    for inside, text in files.items():
        path = os.path.join(root, inside.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def run(files, args, **kw):
    fake_internet()
    kw.setdefault("timeout", 20.0)
    return h.run_pid1(rootfs(files), ["--log-level", "info"] + args, **kw)


def allowed_8080_denied_7000(r):
    check(r.rc == 0, "the agent did not run", r)
    lines = r.out.splitlines()
    check("status=200" in lines and "tunnel=HTTP/1.0 200 OK" in lines,
          "the CONNECT the YAML allows was not tunnelled", r)
    check(lines.count("status=403") == 1, "the CONNECT the YAML does not allow was not denied", r)


@test()
def yaml_policy_file_alone_allows_its_host_and_denies_another():
    r = run({"/etc/openshell/policy.yaml": ALLOW_8080}, ["--", "sh", "-c", CONNECTS])
    allowed_8080_denied_7000(r)
    check("source=/etc/openshell/policy.yaml" in r.err, "policy_loaded does not name the YAML", r)
    check("policy file ignored" not in r.err, "a file was reported ignored with only one present",
          r)


@test()
def yaml_wins_over_ini_and_the_ignored_file_is_logged():
    r = run({"/etc/openshell/policy.yaml": ALLOW_8080, "/etc/openshell/policy.ini": ALLOW_7000_INI},
            ["--", "sh", "-c", CONNECTS])
    allowed_8080_denied_7000(r)
    check("used=/etc/openshell/policy.yaml ignored=/etc/openshell/policy.ini" in r.err,
          "the ignored INI is not logged next to the YAML in force", r)


@test()
def legacy_navigator_yaml_is_used_when_openshell_has_no_yaml():
    r = run({"/etc/navigator/policy.yaml": ALLOW_8080}, ["--", "sh", "-c", CONNECTS])
    allowed_8080_denied_7000(r)
    check("source=/etc/navigator/policy.yaml" in r.err, "the legacy path was not used", r)


@test()
def explicit_yaml_policy_flag_and_env_are_read_as_yaml():
    r = run({"/etc/openshell/policy.ini": ALLOW_7000_INI, "/etc/openshell/mine.yaml": ALLOW_8080},
            ["--policy", "/etc/openshell/mine.yaml", "--", "sh", "-c", CONNECTS])
    allowed_8080_denied_7000(r)
    # No extension: the content decides (not a [section] header, so YAML).
    r = run({"/etc/openshell/policy": "# the sandbox's policy\n" + ALLOW_8080},
            ["--", "sh", "-c", CONNECTS],
            extra_env={"OPENSHELL_POLICY_FILE": "/etc/openshell/policy"})
    allowed_8080_denied_7000(r)


@test()
def invalid_yaml_policy_stops_the_sandbox_naming_line_column_and_field():
    bad = ALLOW_8080.replace("port: 8080", "port: 70000")
    r = run({"/etc/openshell/policy.yaml": bad, "/etc/openshell/policy.ini": ALLOW_7000_INI},
            ["--", "echo", "RAN"])
    check(r.rc == 1 and "RAN" not in r.out, "an invalid YAML policy did not stop the sandbox", r)
    check("/etc/openshell/policy.yaml:6:34: network_policies.fake_http.endpoints[0].port: "
          "must be 1..65535 (got 70000)" in r.err, "the error lacks file:line:col: field", r)


@test()
def gateway_without_a_policy_falls_back_to_the_image_yaml():
    gw = g.Gateway(sandbox_id="sb-yaml")
    try:
        gw.set_policy(None)
        env = {"OPENSHELL_ENDPOINT": gw.endpoint, "OPENSHELL_SANDBOX_ID": "sb-yaml",
               "OPENSHELL_SANDBOX": "sb-yaml-name",
               "OPENSHELL_SANDBOX_TOKEN": "it-token-yaml"}
        r = run({"/etc/openshell/policy.yaml": ALLOW_8080,
                 "/etc/openshell/policy.ini": ALLOW_7000_INI},
                ["--", "sh", "-c", CONNECTS], extra_env=env)
        allowed_8080_denied_7000(r)
        check(r.err.count("policy file ignored") == 1, "the ignored INI is not logged once", r)
    finally:
        gw.stop()
