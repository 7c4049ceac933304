/* The default credential step (px_l7_cred.h): no credentials are resolved yet, so every head
 * goes upstream as px_l7_req_rewrite wrote it. Issue 14 replaces this body.
 *
 * Must never log or keep a credential.
 */
#include "netns/proxy/l7/px_l7_cred.h"

int px_l7_cred_rewrite(const struct px_l7_cred_req *r, char *head, size_t len, size_t cap,
		       struct sv_err *err)
{
	(void)r;
	(void)head;
	(void)cap;
	(void)err;
	return (int)len;
}
