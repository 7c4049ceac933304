/* The proxy child's credential store (see px_creds.h): one global, replaced whole on every
 * PX_MSG_CREDS.
 *
 * The blob and the old store are wiped before they are freed; nothing here logs a value.
 */
#include "netns/proxy/px_creds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A store is never bigger than this (64 MiB of packed values is far beyond any provider). */
#define PX_CREDS_BLOB_MAX ((uint64_t)64 * 1024 * 1024)

static struct px_cred_store *g_store;

const struct px_cred_store *px_creds_current(void)
{
	return g_store;
}

void px_creds_clear(void)
{
	px_cred_store_free(g_store);
	g_store = NULL;
}

int px_creds_load(int memfd, uint64_t len, struct sv_err *err)
{
	_cleanup_close_ int fd = memfd;
	struct stat st;
	px_creds_clear();
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len ||
	    len > PX_CREDS_BLOB_MAX)
		return sv_err_set(err, EPROTO, "credentials: the blob is not the size announced");
	uint8_t *blob = malloc(len ? len : 1);
	if (!blob)
		return sv_err_set(err, ENOMEM, "credentials: out of memory");
	int r = 0;
	for (size_t off = 0; off < len && r == 0;) {
		ssize_t n = pread(fd, blob + off, len - off, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = sv_err_set(err, EIO, "credentials: cannot read the blob");
		else
			off += (size_t)n;
	}
	struct px_cred_store *s = NULL;
	if (r == 0)
		r = px_cred_store_unpack(blob, len, &s, err);
	px_cred_wipe(blob, len);
	free(blob);
	if (r == 0)
		g_store = s;
	return r;
}
