/* Unit tests for session/sshd_*: the SSH socket's set-up, the loopback rule of direct-tcpip and
 * the SFTP v3 packet handler run for real in a scratch directory.
 *
 * End-to-end behaviour with OpenSSH's client is in tests/integration/cases_ssh.py; these pin the
 * parts whose edge cases a client rarely reaches: stale and foreign files at the socket path,
 * address spellings, malformed SFTP packets and the SFTP status codes.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "session/session.h"
#include "session/ssh/sshd.h"
#include "session/ssh/sshd_sftp.h"

static char g_dir[PATH_MAX];

static void scratch(void)
{
	sv_fmt(g_dir, sizeof(g_dir), "/tmp/test_sshd.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

/* --- the socket ------------------------------------------------------------------------------ */

START_TEST(listen_creates_0700_parents_and_a_0600_socket)
{
	scratch();
	char path[PATH_MAX], parent[PATH_MAX];
	sv_fmt(parent, sizeof(parent), "%s/run/openshell", g_dir);
	sv_fmt(path, sizeof(path), "%s/ssh.sock", parent);
	struct sv_err err = {0};
	int fd = sshd_listen(path, &err);
	ck_assert_msg(fd >= 0, "%s", err.msg);
	struct stat st;
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(stat(parent, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	/* The socket is now stale: it is replaced. */
	fd = sshd_listen(path, &err);
	ck_assert_msg(fd >= 0, "%s", err.msg);
	close(fd);
}
END_TEST

START_TEST(listen_refuses_to_replace_a_file_that_is_not_a_socket)
{
	scratch();
	char path[PATH_MAX];
	sv_fmt(path, sizeof(path), "%s/ssh.sock", g_dir);
	int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(f, 0);
	close(f);
	struct sv_err err = {0};
	ck_assert_int_eq(sshd_listen(path, &err), -EEXIST);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a socket"));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(listen_at_name_is_an_abstract_socket)
{
	char name[64];
	sv_fmt(name, sizeof(name), "@test-sshd-%d", (int)getpid());
	struct sv_err err = {0};
	int fd = sshd_listen(name, &err);
	ck_assert_msg(fd >= 0, "%s", err.msg);
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	ck_assert_int_eq(sa.sun_path[0], '\0');
	ck_assert_int_eq(memcmp(sa.sun_path + 1, name + 1, strlen(name) - 1), 0);
	ck_assert_int_eq(access(name, F_OK), -1);
	close(fd);
}
END_TEST

START_TEST(listen_rejects_relative_and_overlong_paths)
{
	struct sv_err err = {0};
	ck_assert_int_eq(sshd_listen("run/ssh.sock", &err), -EINVAL);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(sshd_listen(longp, &err), -ENAMETOOLONG);
	ck_assert_int_eq(sshd_listen("@", &err), -ENAMETOOLONG);
}
END_TEST

/* --- direct-tcpip destinations --------------------------------------------------------------- */

START_TEST(only_loopback_destinations_are_forwarded)
{
	static const char *const yes[] = {"127.0.0.1",	   "127.255.0.9", "localhost",
					  "LocalHost",	   "::1",	  "[::1]",
					  "::ffff:127.0.0.1", "[::ffff:127.1.2.3]"};
	static const char *const no[] = {"10.200.0.1", "0.0.0.0",	   "128.0.0.1",
					 "::",	       "::2",		   "::ffff:10.0.0.1",
					 "example.com", "localhost.",	   "127.0.0.1.nip.io",
					 "",	       "[127.0.0.1",	   "localhost:22",
					 "0177.0.0.1", "2130706433",	   "fe80::1"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(yes); i++)
		ck_assert_msg(sshd_forward_host_is_loopback(yes[i]), "%s refused", yes[i]);
	for (size_t i = 0; i < SV_ARRAY_SIZE(no); i++)
		ck_assert_msg(!sshd_forward_host_is_loopback(no[i]), "%s accepted", no[i]);
}
END_TEST

/* --- SFTP ------------------------------------------------------------------------------------ */

static struct sshd_sftp g_s;
static uint8_t g_pkt[70000];
static size_t g_len;

static void p_begin(uint8_t type, uint32_t id)
{
	g_len = 0;
	g_pkt[g_len++] = type;
	for (int i = 3; i >= 0; i--)
		g_pkt[g_len++] = (uint8_t)(id >> (8 * i));
}

static void p_u32(uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		g_pkt[g_len++] = (uint8_t)(v >> (8 * i));
}

static void p_u64(uint64_t v)
{
	p_u32((uint32_t)(v >> 32));
	p_u32((uint32_t)v);
}

static void p_str(const void *s, size_t n)
{
	p_u32((uint32_t)n);
	memcpy(g_pkt + g_len, s, n);
	g_len += n;
}

static void p_cstr(const char *s)
{
	p_str(s, strlen(s));
}

static uint32_t r_u32(size_t at)
{
	const uint8_t *p = g_s.out + at;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Send the packet; returns the reply's type (and checks its frame). */
static int send_pkt(void)
{
	sshd_sftp_packet(&g_s, g_pkt, g_len);
	ck_assert(g_s.ready);
	ck_assert_uint_eq(r_u32(0), g_s.olen - 4);
	return g_s.out[4];
}

static uint32_t status_code(void)
{
	ck_assert_int_eq(g_s.out[4], 101);
	return r_u32(9);
}

static void path_in(char *buf, size_t size, const char *name)
{
	sv_fmt(buf, size, "%s/%s", g_dir, name);
}

/* OPEN @name with @pflags; returns the 4-byte handle. */
static uint32_t sftp_open(const char *name, uint32_t pflags)
{
	char path[PATH_MAX];
	path_in(path, sizeof(path), name);
	p_begin(3, 7);
	p_cstr(path);
	p_u32(pflags);
	p_u32(0);
	ck_assert_int_eq(send_pkt(), 102);
	ck_assert_uint_eq(r_u32(9), 4);
	return r_u32(13);
}

static void p_handle(uint32_t h)
{
	p_u32(4);
	p_u32(h);
}

START_TEST(sftp_init_answers_version_3)
{
	sshd_sftp_init(&g_s, false);
	p_begin(1, 6); /* INIT carries the client's version where others have an id */
	ck_assert_int_eq(send_pkt(), 2);
	ck_assert_uint_eq(r_u32(5), 3);
}
END_TEST

START_TEST(sftp_write_read_stat_and_close_a_file)
{
	scratch();
	sshd_sftp_init(&g_s, false);
	uint32_t h = sftp_open("f", 0x1 | 0x2 | 0x8 | 0x10);
	p_begin(6, 8);
	p_handle(h);
	p_u64(3);
	p_cstr("hello");
	ck_assert_int_eq(send_pkt(), 101);
	ck_assert_uint_eq(status_code(), 0);
	p_begin(5, 9);
	p_handle(h);
	p_u64(0);
	p_u32(100);
	ck_assert_int_eq(send_pkt(), 103);
	ck_assert_uint_eq(r_u32(9), 8);
	ck_assert_int_eq(memcmp(g_s.out + 13, "\0\0\0hello", 8), 0);
	p_begin(5, 10); /* past the end: EOF */
	p_handle(h);
	p_u64(8);
	p_u32(100);
	send_pkt();
	ck_assert_uint_eq(status_code(), 1);
	p_begin(8, 11);
	p_handle(h);
	ck_assert_int_eq(send_pkt(), 105);
	ck_assert_uint_eq(r_u32(9) & 0x1, 0x1);
	ck_assert_uint_eq(r_u32(17), 8); /* low half of the size */
	p_begin(4, 12);
	p_handle(h);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	p_begin(4, 13); /* closed: the handle is gone */
	p_handle(h);
	send_pkt();
	ck_assert_uint_eq(status_code(), 4);
	sshd_sftp_close_all(&g_s);
}
END_TEST

START_TEST(sftp_errors_map_to_status_codes)
{
	scratch();
	sshd_sftp_init(&g_s, false);
	char path[PATH_MAX];
	path_in(path, sizeof(path), "absent");
	p_begin(17, 1);
	p_cstr(path);
	send_pkt();
	ck_assert_uint_eq(status_code(), 2); /* NO_SUCH_FILE */
	ck_assert_int_eq(chmod(g_dir, 0500), 0);
	p_begin(14, 2);
	path_in(path, sizeof(path), "sub");
	p_cstr(path);
	p_u32(0);
	send_pkt();
	ck_assert_uint_eq(status_code(), geteuid() == 0 ? 0 : 3); /* root ignores the mode */
	ck_assert_int_eq(chmod(g_dir, 0700), 0);
	p_begin(3, 3); /* a path with an embedded NUL is a bad message */
	p_str("/tmp\0x", 6);
	p_u32(1);
	p_u32(0);
	send_pkt();
	ck_assert_uint_eq(status_code(), 5);
	p_begin(5, 4); /* truncated READ */
	p_u32(4);
	send_pkt();
	ck_assert_uint_eq(status_code(), 5);
	p_begin(99, 5);
	send_pkt();
	ck_assert_uint_eq(status_code(), 8); /* OP_UNSUPPORTED */
	g_len = 2; /* no room for an id: nothing to answer */
	sshd_sftp_packet(&g_s, g_pkt, g_len);
	ck_assert(!g_s.ready);
}
END_TEST

START_TEST(sftp_directory_ops_rename_and_readdir)
{
	scratch();
	sshd_sftp_init(&g_s, false);
	char a[PATH_MAX], b[PATH_MAX], d[PATH_MAX];
	path_in(a, sizeof(a), "a");
	path_in(b, sizeof(b), "b");
	path_in(d, sizeof(d), "d");
	close(open(a, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	close(open(b, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	p_begin(18, 1); /* v3 rename onto an existing file fails */
	p_cstr(a);
	p_cstr(b);
	send_pkt();
	ck_assert_uint_eq(status_code(), 4);
	p_begin(200, 2); /* posix-rename replaces */
	p_cstr("posix-rename@openssh.com");
	p_cstr(a);
	p_cstr(b);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	ck_assert_int_eq(access(a, F_OK), -1);
	p_begin(14, 3);
	p_cstr(d);
	p_u32(0x4);
	p_u32(0750);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	struct stat st;
	ck_assert_int_eq(stat(d, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	p_begin(11, 4);
	p_cstr(g_dir);
	ck_assert_int_eq(send_pkt(), 102);
	uint32_t h = r_u32(13);
	int names = 0;
	for (int i = 0; i < 10; i++) {
		p_begin(12, 5);
		p_handle(h);
		if (send_pkt() != 104)
			break;
		names += (int)r_u32(9);
	}
	ck_assert_uint_eq(status_code(), 1); /* EOF after the entries */
	ck_assert_int_eq(names, 4);	     /* ".", "..", "b", "d" */
	p_begin(15, 6);
	p_cstr(d);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	p_begin(13, 7);
	p_cstr(b);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	ck_assert_int_eq(access(b, F_OK), -1);
	sshd_sftp_close_all(&g_s);
}
END_TEST

START_TEST(sftp_realpath_and_symlinks)
{
	scratch();
	sshd_sftp_init(&g_s, false);
	char want[PATH_MAX + 16], p[PATH_MAX + 32];
	ck_assert_int_eq(chdir(g_dir), 0);
	p_begin(16, 1); /* not existing: cleaned lexically against the cwd */
	p_cstr("x/../y/./z");
	ck_assert_int_eq(send_pkt(), 104);
	sv_fmt(want, sizeof(want), "%s/y/z", g_dir);
	ck_assert_uint_eq(r_u32(13), strlen(want));
	ck_assert_int_eq(memcmp(g_s.out + 17, want, strlen(want)), 0);
	sv_fmt(p, sizeof(p), "%s/link", g_dir);
	p_begin(20, 2); /* OpenSSH's order: target, then the link */
	p_cstr("target");
	p_cstr(p);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	p_begin(19, 3);
	p_cstr(p);
	ck_assert_int_eq(send_pkt(), 104);
	ck_assert_uint_eq(r_u32(13), 6);
	ck_assert_int_eq(memcmp(g_s.out + 17, "target", 6), 0);
}
END_TEST

START_TEST(sftp_dry_mode_changes_nothing)
{
	scratch();
	sshd_sftp_init(&g_s, true);
	char a[PATH_MAX];
	path_in(a, sizeof(a), "made");
	p_begin(14, 1);
	p_cstr(a);
	p_u32(0);
	send_pkt();
	ck_assert_uint_eq(status_code(), 0);
	ck_assert_int_eq(access(a, F_OK), -1);
	p_begin(3, 2);
	p_cstr(a);
	p_u32(0x2 | 0x8);
	p_u32(0);
	ck_assert_int_eq(send_pkt(), 102);
	ck_assert_int_eq(access(a, F_OK), -1);
	struct stat before, after;
	ck_assert_int_eq(stat("/dev/null", &before), 0);
	p_begin(10, 3); /* fsetstat on the dry handle (/dev/null) must not touch it */
	p_handle(r_u32(13));
	p_u32(0x2 | 0x4);
	p_u32(1);
	p_u32(1);
	p_u32(0600);
	send_pkt();
	ck_assert_int_eq(stat("/dev/null", &after), 0);
	ck_assert_uint_eq(before.st_mode, after.st_mode);
	ck_assert_uint_eq(before.st_uid, after.st_uid);
	sshd_sftp_close_all(&g_s);
}
END_TEST

static Suite *sshd_suite(void)
{
	Suite *s = suite_create("sshd");
	TCase *tc = tcase_create("socket");
	tcase_add_test(tc, listen_creates_0700_parents_and_a_0600_socket);
	tcase_add_test(tc, listen_refuses_to_replace_a_file_that_is_not_a_socket);
	tcase_add_test(tc, listen_at_name_is_an_abstract_socket);
	tcase_add_test(tc, listen_rejects_relative_and_overlong_paths);
	suite_add_tcase(s, tc);
	tc = tcase_create("forward");
	tcase_add_test(tc, only_loopback_destinations_are_forwarded);
	suite_add_tcase(s, tc);
	tc = tcase_create("sftp");
	tcase_add_test(tc, sftp_init_answers_version_3);
	tcase_add_test(tc, sftp_write_read_stat_and_close_a_file);
	tcase_add_test(tc, sftp_errors_map_to_status_codes);
	tcase_add_test(tc, sftp_directory_ops_rename_and_readdir);
	tcase_add_test(tc, sftp_realpath_and_symlinks);
	tcase_add_test(tc, sftp_dry_mode_changes_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sshd_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
