/* PID 1's part of TLS termination for now (l7 contract §1.2, §1.3): make the sandbox CA off the
 * critical path (a thread started early in setup, joined when the agent's environment is
 * finished), write the agent's CA files, and give the agent the six trust-store variables.
 *
 * Failure is loud, never silent: a HIGH finding, no variables, and px_tls_boot_ok() false so the
 * proxy refuses terminating tunnels with 503 later. The CA key stays in this process's memory.
 */
#include "netns/proxy/l7/px_tls.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "supervisor/env.h"
#include "supervisor/log.h"

#define COMP "proxy"

static struct {
	pthread_t thread;
	bool started, joined, ok;
	char dir[4096];
	struct px_ca *ca;
	int r;
	struct sv_err err;
	long long make_us; /* CA + files, on the thread */
} boot;

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *boot_main(void *arg)
{
	(void)arg;
	long long t0 = mono_us();
	boot.r = px_ca_generate(&boot.ca, &boot.err);
	if (boot.r == 0)
		boot.r = px_tls_write_ca_files(boot.dir, px_ca_cert_pem(boot.ca), &boot.err);
	boot.make_us = mono_us() - t0;
	return NULL;
}

int px_tls_boot_start(void)
{
	memset(&boot, 0, sizeof(boot));
	if (sv_fmt(boot.dir, sizeof(boot.dir), "%s", px_tls_dir()) >= sizeof(boot.dir) - 1) {
		boot.r = sv_err_set(&boot.err, ENAMETOOLONG, "%s: path too long", PX_TLS_DIR_ENV);
		return boot.r;
	}
	/* The directory now, so the policy baseline (made before the join) sees it. */
	boot.r = px_tls_mkdirs(boot.dir, &boot.err);
	if (boot.r < 0)
		return boot.r;
	/* The thread blocks every signal: it inherits our mask (all blocked in setup). */
	if (pthread_create(&boot.thread, NULL, boot_main, NULL) == 0)
		boot.started = true;
	return 0;
}

static void finding(void)
{
	sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "tls_ca_unavailable",
		    "TLS termination unavailable: the sandbox CA could not be made; CONNECT "
		    "tunnels that would be terminated will be refused",
		    SV_KVS({"dir", boot.dir}, {"error", boot.err.msg}));
}

int px_tls_boot_finish(struct sv_env *env)
{
	if (boot.joined)
		return boot.ok ? 0 : -EIO;
	boot.joined = true;
	long long t0 = mono_us();
	if (boot.started)
		pthread_join(boot.thread, NULL);
	else if (boot.r == 0)
		boot_main(NULL); /* no thread: do it here */
	if (boot.r < 0) {
		finding();
		px_ca_free(boot.ca);
		boot.ca = NULL;
		return boot.r;
	}
	char ca[4200], bundle[4200];
	sv_fmt(ca, sizeof(ca), "%s/%s", boot.dir, PX_TLS_CA_FILE);
	sv_fmt(bundle, sizeof(bundle), "%s/%s", boot.dir, PX_TLS_BUNDLE_FILE);
	static const char *const ca_vars[] = {"NODE_EXTRA_CA_CERTS", "DENO_CERT"};
	static const char *const bundle_vars[] = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
						  "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"};
	int r = 0;
	for (size_t i = 0; r == 0 && i < SV_ARRAY_SIZE(ca_vars); i++)
		r = sv_env_set(env, ca_vars[i], ca);
	for (size_t i = 0; r == 0 && i < SV_ARRAY_SIZE(bundle_vars); i++)
		r = sv_env_set(env, bundle_vars[i], bundle);
	if (r < 0) {
		sv_err_set(&boot.err, -r, "agent environment: out of memory");
		finding();
		return r;
	}
	boot.ok = true;
	char made[24], waited[24];
	sv_fmt(made, sizeof(made), "%lld", boot.make_us);
	sv_fmt(waited, sizeof(waited), "%lld", mono_us() - t0); /* what setup paid for it */
	sv_log_kv(SV_LOG_INFO, COMP, "tls_ca_ready", "sandbox CA ready",
		  SV_KVS({"ca", ca}, {"bundle", bundle}, {"make_us", made}, {"wait_us", waited}));
	return 0;
}

bool px_tls_boot_ok(void)
{
	return boot.ok;
}

const struct px_ca *px_tls_boot_ca(void)
{
	return boot.ok ? boot.ca : NULL;
}
