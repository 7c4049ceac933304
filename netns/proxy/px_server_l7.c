/* Egress proxy: a forward-proxy (absolute-form http://) request to a REST endpoint, judged on the
 * decision worker by the same rules as a request inside a tunnel (l7 contract §2.8).
 *
 * Never logs the query string; never lets a request the rules deny (under enforce) go on.
 */
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"
#include "netns/proxy/px_server_int.h"
#include "netns/proxy/px_tunnel.h"
#include "supervisor/log.h"

/* A forward-proxy request to a REST endpoint is judged like a request inside a tunnel (l7
 * contract §2.8 forward-proxy denial). Worker thread. Returns -1 when the request must not go
 * on (p->l7_deny or p->l7_bad set). */
int px_forward_judge(struct px_parse *p, const struct px_query *q)
{
	char method[32];
	sv_fmt(method, sizeof(method), "%.*s", (int)(p->req.method_len < 31 ? p->req.method_len : 31),
	       p->req.method);
	char *canon = malloc(PX_L7_CANON_MAX), *red = malloc(PX_L7_CANON_MAX + 256);
	char *qbuf = malloc(p->uri.query_len + 1);
	if (!canon || !red || !qbuf) {
		free(canon);
		free(red);
		free(qbuf);
		p->l7_bad = true;
		return -1;
	}
	struct px_l7_canon cn = {0};
	enum px_l7_path_err why = PX_L7_PATH_OK;
	int cr = px_l7_path_canon(p->uri.path, p->uri.path_len, true, canon, PX_L7_CANON_MAX, &cn,
				  &why);
	if (cr < 0 || px_l7_redact_path(canon, cn.path_len, red, PX_L7_CANON_MAX + 256) < 0)
		sv_fmt(red, PX_L7_CANON_MAX, "%s", cr < 0 ? "/" : "/[CREDENTIAL]");
	const struct px_l7_judge_req jr = {
	    .method = method, .path = red, .canon = canon, .canon_len = cr < 0 ? 0 : cn.path_len,
	    .canon_err = cr < 0 ? px_l7_path_strerror(why) : NULL, .query = p->uri.query,
	    .query_len = p->uri.query_len, .qbuf = qbuf, .qbuf_size = p->uri.query_len + 1};
	struct px_l7_judgement j;
	int r = px_l7_judge(p->policy ? &p->policy->pol : NULL, q, &jr, &j);
	free(canon);
	free(qbuf);
	if (r < 0) {
		free(red);
		p->l7_bad = true;
		sv_fmt(p->reason, sizeof(p->reason), "%s", j.reason);
		return -1;
	}
	char line[PX_L7_CANON_MAX + 1024];
	if (px_l7_log_request(line, sizeof(line), j.decision, method, p->auth.host, p->auth.port,
			      red, NULL, j.reason) < 0)
		sv_fmt(line, sizeof(line), "L7_REQUEST %s %s", j.decision, method);
	char rule[300];
	sv_fmt(rule, sizeof(rule), "%s,l7", j.policy ? j.policy : "-");
	bool deny = !strcmp(j.decision, "deny");
	sv_log_ocsf("HTTP:ACTIVITY", deny ? SV_SEV_MED : SV_SEV_INFO, deny ? "DENIED" : "ALLOWED",
		    "l7_request", line, SV_KVS({"policy", rule}, {"engine", "supervisor"}));
	if (deny) {
		p->l7_deny = true;
		p->l7_path = red;
		sv_fmt(p->reason, sizeof(p->reason), "%s", j.reason);
		return -1;
	}
	free(red);
	p->l7_judged = true;
	return 0;
}
