/* Trust material and the agent's CA files (l7 contract §1.2, §1.3, §1.5): the system bundle
 * lookup, PEM loading, the Mozilla roots compiled in at build time (build/gen/px_roots_data.c,
 * from Debian's ca-certificates), and writing openshell-ca.pem + ca-bundle.pem.
 *
 * Never writes a private key; the files hold public certificates only.
 */
#include "netns/proxy/l7/px_tls_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/pem.h>

/* §1.2: first non-empty readable one wins. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu */
    "/etc/pki/tls/certs/ca-bundle.crt",	  /* RHEL, Fedora */
    "/etc/ssl/ca-bundle.pem",		  /* openSUSE */
    "/etc/ssl/cert.pem",		  /* Alpine */
};
#define PX_BUNDLE_MAX ((size_t)16 * 1024 * 1024)

/* Generated (build/gen/px_roots_data.c). */
struct px_root_der {
	const uint8_t *der;
	size_t len;
};
extern const struct px_root_der px_roots_table[];
extern const size_t px_roots_table_len;

size_t px_roots_count(void)
{
	return px_roots_table_len;
}

const uint8_t *px_roots_der(size_t i, size_t *len)
{
	*len = px_roots_table[i].len;
	return px_roots_table[i].der;
}

static int read_file(const char *path, char **text, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > PX_BUNDLE_MAX) {
		close(fd);
		return -EINVAL;
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *buf = malloc(size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrank under us: keep what was read */
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

int px_tls_system_bundle(char **text, size_t *len, const char **path)
{
	*text = NULL;
	*len = 0;
	*path = NULL;
	for (size_t i = 0; i < SV_ARRAY_SIZE(system_bundles); i++) {
		char *t = NULL;
		size_t n = 0;
		if (read_file(system_bundles[i], &t, &n) < 0)
			continue;
		if (n == 0) {
			free(t);
			continue;
		}
		*text = t;
		*len = n;
		*path = system_bundles[i];
		return 0;
	}
	return -ENOENT;
}

int px_tls_load_pem_certs(void *chain, const char *text, size_t len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	mbedtls_x509_crt *crt = chain;
	int n = 0;
	const char *p = text, *stop = text + len;
	/* One block at a time, so a broken block costs only itself (mbedTLS's whole-buffer parse
	 * stops at the first malformed PEM). */
	while (p < stop) {
		const char *b = memmem(p, (size_t)(stop - p), begin, sizeof(begin) - 1);
		if (!b)
			break;
		const char *e = memmem(b, (size_t)(stop - b), end, sizeof(end) - 1);
		if (!e)
			break;
		e += sizeof(end) - 1;
		size_t blen = (size_t)(e - b);
		char *block = malloc(blen + 2);
		if (!block)
			break;
		memcpy(block, b, blen);
		block[blen] = '\n';
		block[blen + 1] = '\0';
		if (mbedtls_x509_crt_parse(crt, (const unsigned char *)block, blen + 2) == 0)
			n++;
		free(block);
		p = e;
	}
	return n;
}

const char *px_tls_dir(void)
{
	const char *d = getenv(PX_TLS_DIR_ENV);
	return d && *d ? d : PX_TLS_DIR_DEFAULT;
}

int px_tls_mkdirs(const char *path, struct sv_err *err)
{
	char buf[4096];
	if (path[0] != '/' || sv_fmt(buf, sizeof(buf), "%s", path) >= sizeof(buf) - 1)
		return sv_err_set(err, EINVAL, "%s: not an absolute path of at most %zu bytes", path,
				  sizeof(buf) - 2);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return sv_err_set(err, errno, "mkdir %s: %s", buf, strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return sv_err_set(err, ENOTDIR, "%s: not a directory", path);
	return 0;
}

/* Write @parts into <dir>/<name> through a temporary file and rename, mode 0644. */
static int write_atomic(const char *dir, const char *name, const char *const *parts,
			const size_t *lens, size_t nparts, struct sv_err *err)
{
	char path[4200], tmp[4220];
	sv_fmt(path, sizeof(path), "%s/%s", dir, name);
	sv_fmt(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return sv_err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
	int r = 0;
	for (size_t i = 0; r == 0 && i < nparts; i++)
		r = sv_write_all(fd, parts[i], lens[i]);
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return sv_err_set(err, -r, "cannot write %s: %s", path, strerror(-r));
	}
	return 0;
}

int px_tls_write_ca_files(const char *dir, const char *ca_pem, struct sv_err *err)
{
	int r = px_tls_mkdirs(dir, err);
	if (r < 0)
		return r;
	size_t ca_len = strlen(ca_pem);
	const char *parts[3] = {ca_pem};
	size_t lens[3] = {ca_len};
	r = write_atomic(dir, PX_TLS_CA_FILE, parts, lens, 1, err);
	if (r < 0)
		return r;
	char *sys = NULL;
	size_t sys_len = 0;
	const char *sys_path;
	size_t n = 0;
	if (px_tls_system_bundle(&sys, &sys_len, &sys_path) == 0) {
		parts[n] = sys;
		lens[n++] = sys_len;
		if (sys[sys_len - 1] != '\n') {
			parts[n] = "\n";
			lens[n++] = 1;
		}
	}
	parts[n] = ca_pem;
	lens[n++] = ca_len;
	r = write_atomic(dir, PX_TLS_BUNDLE_FILE, parts, lens, n, err);
	free(sys);
	return r;
}
