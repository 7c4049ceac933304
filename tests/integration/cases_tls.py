"""Cases: the sandbox CA (l7 contract §1.2, §1.3), with the supervisor on the host. The agent
must see the six trust-store variables, read the CA file through its Landlock policy (the CA
directory is in the proxy baseline) and find a certificate that parses as the sandbox CA; a CA
that cannot be written is a HIGH finding and no variables, not a failed start.
"""

import os
import shutil
import tempfile

import harness as h
from harness import check
from suite import SUPERVISOR, test

AGENT = r"""
import os, ssl, sys
names = ["NODE_EXTRA_CA_CERTS", "DENO_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
         "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"]
for n in names:
    print("%s=%s" % (n, os.environ.get(n, "-")))
if os.environ.get("DENO_CERT"):
    pem = open(os.environ["NODE_EXTRA_CA_CERTS"]).read()
    bundle = open(os.environ["SSL_CERT_FILE"]).read()
    print("bundle_ends_with_ca=%s" % bundle.endswith(pem))
    c = ssl._ssl._test_decode_cert(os.environ["DENO_CERT"])
    print("subject=%s" % ",".join("%s=%s" % kv[0] for kv in c["subject"]))
    print("issuer=%s" % ",".join("%s=%s" % kv[0] for kv in c["issuer"]))
    print("notAfter=%s" % c["notAfter"])
    try:
        open(os.environ["DENO_CERT"], "a").close()
        print("writable=yes")
    except OSError:
        print("writable=no")
"""


def agent(tls_dir):
    py = os.path.realpath("/usr/bin/python3")
    return h.run_host([SUPERVISOR, "--", py, "-c", AGENT], timeout=30.0,
                      extra_env={"OPENSHELL_PROXY_TLS_DIR": tls_dir})


@test(kind="host")
def agent_sees_the_ca_variables_and_reads_the_sandbox_ca():
    # Under /run, which the restrictive default policy does not grant: only the baseline's
    # CA directory entry makes it readable to the agent.
    d = tempfile.mkdtemp(prefix="svtest-tls-", dir="/run")
    os.chmod(d, 0o755)
    tls_dir = os.path.join(d, "openshell-tls")
    try:
        r = agent(tls_dir)
        ca, bundle = tls_dir + "/openshell-ca.pem", tls_dir + "/ca-bundle.pem"
        want = ["NODE_EXTRA_CA_CERTS=" + ca, "DENO_CERT=" + ca, "SSL_CERT_FILE=" + bundle,
                "REQUESTS_CA_BUNDLE=" + bundle, "CURL_CA_BUNDLE=" + bundle,
                "GIT_SSL_CAINFO=" + bundle]
        lines = r.out.splitlines()
        check(lines[:6] == want, "trust-store variables missing or wrong", r)
        check("bundle_ends_with_ca=True" in lines, "ca-bundle.pem does not end with the CA", r)
        check("subject=commonName=OpenShell Sandbox CA,organizationName=OpenShell" in lines,
              "the CA file is not the sandbox CA", r)
        check("issuer=commonName=OpenShell Sandbox CA,organizationName=OpenShell" in lines,
              "the sandbox CA is not self-signed", r)
        check("notAfter=Jan  1 00:00:00 4096 GMT" in lines, "CA validity is not 4096-01-01", r)
        check("writable=no" in lines, "the agent can write the CA file", r)
        check(oct(os.stat(ca).st_mode & 0o777) == "0o644", "CA file mode is not 0644", r)
        check("BEGIN PRIVATE KEY" not in open(ca).read() + open(bundle).read() and
              "EC PRIVATE KEY" not in open(bundle).read(), "a private key was written", r)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test(kind="host")
def an_unwritable_ca_directory_is_a_high_finding_and_no_variables():
    d = tempfile.mkdtemp(prefix="svtest-tls-", dir="/tmp")
    try:
        blocker = os.path.join(d, "file")
        open(blocker, "w").close()
        r = agent(os.path.join(blocker, "sub"))
        check(r.rc == 0, "the sandbox did not start without a CA", r)
        check(all(line.endswith("=-") for line in r.out.splitlines()[:6]),
              "trust-store variables set without a CA", r)
        check(any("FINDING:OPEN [HIGH]" in line and "TLS termination unavailable" in line
                  for line in r.err.splitlines()), "no HIGH finding for the missing CA", r)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test()
def ssh_children_get_the_ca_variables_and_read_the_ca_as_pid1():
    # As PID 1 over the test rootfs, default directory: /etc/openshell-tls inside the rootfs.
    import cases_ssh
    cases_ssh.needs_ssh()
    sb = cases_ssh.Sandbox()
    try:
        rc, out, err = sb.ssh("echo N=$NODE_EXTRA_CA_CERTS; echo C=$CURL_CA_BUNDLE;"
                              " echo G=$GIT_SSL_CAINFO; head -n 1 $DENO_CERT;"
                              " tail -n 1 $SSL_CERT_FILE")
        lines = out.decode().split("\n")
        check(rc == 0, "rc %d %r" % (rc, err))
        check("N=/etc/openshell-tls/openshell-ca.pem" in lines and
              "C=/etc/openshell-tls/ca-bundle.pem" in lines and
              "G=/etc/openshell-tls/ca-bundle.pem" in lines, "SSH environment: %r" % out)
        check(lines[3] == "-----BEGIN CERTIFICATE-----" and
              lines[4] == "-----END CERTIFICATE-----", "CA files unreadable over SSH: %r" % out)
    finally:
        sb.close()
