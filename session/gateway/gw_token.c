/* The sandbox token sent as `authorization: Bearer <token>` on every gateway call (contract
 * §10 "Transport/auth"): OPENSHELL_SANDBOX_TOKEN, else the trimmed OPENSHELL_SANDBOX_TOKEN_FILE,
 * else OPENSHELL_K8S_SA_TOKEN_FILE exchanged through IssueSandboxToken; refreshed with
 * RefreshSandboxToken on the contract's schedule. Owned by the one gateway client (gw_client.c):
 * the exchange runs once, on the first connection, and every call uses the current bearer. Both
 * token calls go through gw_unary_start. The token is never logged, never put in an error
 * message, and its variables never reach the agent (supervisor/env.c strips them).
 */
#include "gw_client.h"
#include "gw_sess.h"

#include <stdlib.h>
#include <string.h>

#include "gw_rpc.h"
#include "openshell.pb-c.h"
#include "supervisor/log.h"

static const char *token_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Where the token comes from, in the contract's order; *@value is the token (ENV) or the file's
 * path (FILE, K8S). */
static enum gw_token_src token_source(const char **value)
{
	if ((*value = token_env("OPENSHELL_SANDBOX_TOKEN")))
		return GW_TOKEN_ENV;
	if ((*value = token_env("OPENSHELL_SANDBOX_TOKEN_FILE")))
		return GW_TOKEN_FILE;
	if ((*value = token_env("OPENSHELL_K8S_SA_TOKEN_FILE")))
		return GW_TOKEN_K8S;
	return GW_TOKEN_NONE;
}

static const char *src_name(enum gw_token_src src)
{
	switch (src) {
	case GW_TOKEN_ENV:
		return "OPENSHELL_SANDBOX_TOKEN";
	case GW_TOKEN_FILE:
		return "OPENSHELL_SANDBOX_TOKEN_FILE";
	case GW_TOKEN_K8S:
		return "OPENSHELL_K8S_SA_TOKEN_FILE";
	default:
		return "none";
	}
}

static void set_token(struct gw_token *t, char *tok, uint64_t exp_ms)
{
	free(t->token);
	t->token = tok;
	uint64_t now = gw_wall_ms();
	uint64_t delay = gw_token_refresh_delay(now, exp_ms, strlen(tok));
	(void)sv_timer_arm(&t->refresh, delay, 0);
	char in[24];
	sv_fmt(in, sizeof(in), "%llu", (unsigned long long)(delay / 1000));
	sv_log_kv(SV_LOG_DEBUG, GW_COMP, "token_refresh_scheduled", "token refresh scheduled",
		  SV_KVS({"source", src_name(t->src)}, {"in_s", in}));
}

/* Load an env or file token (the file is re-read until it works). */
static int load_static(struct gw_token *t)
{
	if (t->token)
		return 1;
	char *tok = NULL;
	if (t->src == GW_TOKEN_ENV) {
		size_t n = strlen(t->env_value);
		if (!gw_token_is_valid(t->env_value, n)) {
			sv_warn(GW_COMP, "token_invalid",
				"OPENSHELL_SANDBOX_TOKEN holds characters a token cannot have");
			return -EINVAL;
		}
		tok = strdup(t->env_value);
		if (!tok)
			return -ENOMEM;
	} else {
		struct sv_err err = {0};
		int r = gw_token_read_file(src_name(t->src), t->path, &tok, &err);
		if (r < 0) {
			sv_log_kv(SV_LOG_ERROR, GW_COMP, "token_unavailable",
				  "no sandbox token: gateway calls will be refused",
				  SV_KVS({"error", err.msg}));
			return r;
		}
	}
	set_token(t, tok, gw_jwt_exp(tok, strlen(tok)) * 1000);
	sv_log_kv(SV_LOG_INFO, GW_COMP, "token_loaded", "sandbox token loaded",
		  SV_KVS({"source", src_name(t->src)}));
	return 1;
}

/* IssueSandboxTokenResponse and RefreshSandboxTokenResponse share fields 1 and 2. */
static char *token_from_response(const uint8_t *resp, size_t len, uint64_t *exp_ms)
{
	char *tok = NULL;
	*exp_ms = 0;
	Openshell__V1__RefreshSandboxTokenResponse *r =
		resp ? openshell__v1__refresh_sandbox_token_response__unpack(NULL, len, resp) : NULL;
	if (r && r->token && gw_token_is_valid(r->token, strlen(r->token))) {
		tok = strdup(r->token);
		*exp_ms = r->expires_at_ms > 0 ? (uint64_t)r->expires_at_ms : 0;
	}
	if (r)
		openshell__v1__refresh_sandbox_token_response__free_unpacked(r, NULL);
	return tok;
}

static void token_call_done(int status, const char *message, const uint8_t *resp, size_t len,
			    void *data)
{
	struct gw_token *t = data;
	bool issuing = t->issuing;
	t->call = NULL;
	t->issuing = false;
	char st[16];
	sv_fmt(st, sizeof(st), "%d", status);
	if (status == GW_STATUS_OK) {
		uint64_t exp = 0;
		char *tok = token_from_response(resp, len, &exp);
		if (tok) {
			set_token(t, tok, exp);
			sv_log_kv(SV_LOG_INFO, GW_COMP, issuing ? "token_issued" : "token_refreshed",
				  issuing ? "sandbox token issued for the SA token"
					  : "sandbox token refreshed",
				  SV_KVS({"source", src_name(t->src)}));
			if (issuing)
				gw_client_token_ready(t->c, true, NULL);
			return;
		}
		sv_warn(GW_COMP, "token_response_invalid", "the gateway's token response is unusable");
	} else {
		sv_log_kv(SV_LOG_WARN, GW_COMP, issuing ? "token_issue_failed" : "token_refresh_failed",
			  issuing ? "IssueSandboxToken failed"
				  : "RefreshSandboxToken failed; retrying in 10 s",
			  SV_KVS({"status", st}, {"message", message && *message ? message : "-"}));
	}
	if (issuing) {
		gw_client_token_ready(t->c, false, "IssueSandboxToken failed");
		return;
	}
	/* K8s: an Unauthenticated refresh means the sandbox token is dead; exchange again. */
	if (status == GW_STATUS_UNAUTHENTICATED && t->src == GW_TOKEN_K8S && t->token) {
		explicit_bzero(t->token, strlen(t->token));
		free(t->token);
		t->token = NULL;
	}
	(void)sv_timer_arm(&t->refresh, GW_TOKEN_RETRY_MS, 0);
}

/* IssueSandboxToken (with the SA token) or RefreshSandboxToken (with the current one) through
 * the generic unary helper, on @conn. Both requests are empty: no extension services are named. */
static int token_call(struct gw_token *t, struct gw_conn *conn, bool issue)
{
	if (!conn || t->call)
		return -EAGAIN;
	char *sa = NULL;
	if (issue) {
		struct sv_err err = {0};
		int r = gw_token_read_file(src_name(t->src), t->path, &sa, &err);
		if (r < 0) {
			sv_log_kv(SV_LOG_ERROR, GW_COMP, "token_unavailable",
				  "no SA token to exchange", SV_KVS({"error", err.msg}));
			return r;
		}
	}
	Openshell__V1__IssueSandboxTokenRequest ireq = OPENSHELL__V1__ISSUE_SANDBOX_TOKEN_REQUEST__INIT;
	Openshell__V1__RefreshSandboxTokenRequest rreq =
		OPENSHELL__V1__REFRESH_SANDBOX_TOKEN_REQUEST__INIT;
	struct sv_err err = {0};
	int r = gw_unary_start(conn,
			       issue ? GW_METHOD("IssueSandboxToken") : GW_METHOD("RefreshSandboxToken"),
			       issue ? sa : t->token, issue ? &ireq.base : &rreq.base,
			       GW_UNARY_DEADLINE_MS, token_call_done, t, &t->call, &err);
	if (sa) {
		explicit_bzero(sa, strlen(sa));
		free(sa);
	}
	if (r < 0) {
		t->call = NULL;
		return r;
	}
	t->issuing = issue;
	return 0;
}

static void on_refresh(struct sv_loop *loop, struct sv_timer *timer)
{
	(void)loop;
	struct gw_token *t = timer->data;
	int r;
	if (!t->token) {
		r = t->src == GW_TOKEN_K8S ? token_call(t, gw_client_conn(t->c), true)
		    : load_static(t) > 0   ? 0
					   : -EAGAIN;
	} else {
		r = token_call(t, gw_client_conn(t->c), false);
	}
	if (r < 0 && !t->call)
		(void)sv_timer_arm(&t->refresh, GW_TOKEN_RETRY_MS, 0);
}

int gw_token_init(struct gw_token *t, struct gw_client *c, struct sv_err *err)
{
	memset(t, 0, sizeof(*t));
	t->refresh.w.fd = -1;
	int r = sv_timer_init(gw_client_loop(c), &t->refresh, on_refresh, t);
	if (r < 0)
		return sv_err_set(err, -r, "token timer: %s", strerror(-r));
	t->c = c;
	const char *v;
	t->src = token_source(&v);
	if (t->src == GW_TOKEN_ENV) {
		t->env_value = v;
	} else if (t->src != GW_TOKEN_NONE) {
		t->path = v;
	} else {
		sv_warn(GW_COMP, "token_missing",
			"no sandbox token source (OPENSHELL_SANDBOX_TOKEN, _TOKEN_FILE or "
			"OPENSHELL_K8S_SA_TOKEN_FILE): calls go without authorization");
		return 0;
	}
	if (t->src != GW_TOKEN_K8S)
		(void)load_static(t);
	return 0;
}

const char *gw_token_bearer(const struct gw_token *t)
{
	return t->token;
}

int gw_token_ensure(struct gw_token *t, struct gw_conn *conn)
{
	if (t->token || t->src == GW_TOKEN_NONE)
		return 1;
	if (t->src != GW_TOKEN_K8S) {
		(void)load_static(t); /* a file that appeared since; without one, go unauthorised */
		return 1;
	}
	if (t->call && t->issuing)
		return 0;
	if (t->call) { /* a call in flight cannot help: replace it */
		gw_unary_cancel(t->call);
		t->call = NULL;
	}
	(void)sv_timer_disarm(&t->refresh);
	int r = token_call(t, conn, true);
	return r < 0 ? r : 0;
}

void gw_token_conn_lost(struct gw_token *t)
{
	if (t->call) {
		if (!t->issuing) /* the refresh went down with the connection: try again */
			(void)sv_timer_arm(&t->refresh, GW_TOKEN_RETRY_MS, 0);
		gw_unary_cancel(t->call);
	}
	t->call = NULL;
	t->issuing = false;
}

void gw_token_close(struct gw_token *t)
{
	if (t->c)
		sv_timer_close(gw_client_loop(t->c), &t->refresh);
	if (t->token) {
		explicit_bzero(t->token, strlen(t->token));
		free(t->token);
	}
	t->token = NULL;
}
