/* Unit tests for netns/proxy/px_creator.c (the connection creator table) and the proxy address
 * match of supervisor/isolation/connmon.c: first record wins, take-once, cookie and TTL checks,
 * a dead socket's inode replaced, the cap evicting the oldest, over-long ancestries flagged;
 * PID 1's answer (px_creator_take) and the proxy process's judgement (px_creator_allowed).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_creator.h"
#include "supervisor/policy/policy.h"
#include "supervisor/isolation/connmon.h"

static struct px_ident *mk(const char *exe, size_t n_anc, const char *anc)
{
	struct px_ident *id = calloc(1, sizeof(*id));
	ck_assert_ptr_nonnull(id);
	snprintf(id->exe.path, sizeof(id->exe.path), "%s", exe);
	for (size_t i = 0; i < n_anc; i++)
		snprintf(id->ancestors[i].path, sizeof(id->ancestors[i].path), "%s", anc);
	id->n_ancestors = n_anc;
	return id;
}

START_TEST(record_is_taken_once_with_exe_and_ancestors)
{
	px_creator_reset();
	struct px_ident *id = mk("/usr/bin/curl", 2, "/bin/sh");
	ck_assert_int_eq(px_creator_put(id, 42, 7, 100, 1000), 0);
	struct px_creator c;
	ck_assert_int_eq(px_ident_creator_lookup(100, 7, 1001, &c), 0);
	ck_assert_str_eq(c.exe, "/usr/bin/curl");
	ck_assert_uint_eq(c.n_ancestors, 2);
	ck_assert_str_eq(c.ancestors[1], "/bin/sh");
	ck_assert_int_eq(c.pid, 42);
	ck_assert(!c.too_long);
	px_creator_release(&c);
	ck_assert_int_eq(px_ident_creator_lookup(100, 7, 1002, &c), -ENOENT);
	free(id);
}
END_TEST

START_TEST(first_connect_on_a_socket_names_its_creator)
{
	px_creator_reset();
	struct px_ident *bad = mk("/tmp/evil", 0, NULL), *good = mk("/usr/bin/curl", 0, NULL);
	ck_assert_int_eq(px_creator_put(bad, 1, 7, 100, 1000), 0);
	ck_assert_int_eq(px_creator_put(good, 2, 7, 100, 1001), -EEXIST);
	struct px_creator c;
	ck_assert_int_eq(px_ident_creator_lookup(100, 7, 1002, &c), 0);
	ck_assert_str_eq(c.exe, "/tmp/evil");
	px_creator_release(&c);
	free(bad);
	free(good);
}
END_TEST

START_TEST(cookie_mismatch_and_expiry_deny)
{
	px_creator_reset();
	struct px_ident *id = mk("/usr/bin/curl", 0, NULL);
	struct px_creator c;
	/* Same inode, another socket (the inode was reused): no record for this one. */
	ck_assert_int_eq(px_creator_put(id, 1, 7, 100, 1000), 0);
	ck_assert_int_eq(px_ident_creator_lookup(100, 8, 1001, &c), -ENOENT);
	/* Cookie unknown (no sock_diag): the inode alone. */
	ck_assert_int_eq(px_creator_put(id, 1, 7, 100, 1000), 0);
	ck_assert_int_eq(px_ident_creator_lookup(100, 0, 1001, &c), 0);
	px_creator_release(&c);
	/* Expired. */
	ck_assert_int_eq(px_creator_put(id, 1, 9, 101, 1000), 0);
	ck_assert_int_eq(px_ident_creator_lookup(101, 9, 1000 + PX_CREATOR_TTL_MS + 1, &c),
			 -ENOENT);
	ck_assert_uint_eq(px_creator_count(), 0);
	free(id);
}
END_TEST

START_TEST(a_dead_sockets_inode_is_replaced)
{
	px_creator_reset();
	struct px_ident *old = mk("/usr/bin/curl", 0, NULL), *now = mk("/tmp/evil", 0, NULL);
	ck_assert_int_eq(px_creator_put(old, 1, 7, 100, 1000), 0);
	ck_assert_int_eq(px_creator_put(now, 2, 8, 100, 1001), 0);
	ck_assert_uint_eq(px_creator_count(), 1);
	struct px_creator c;
	ck_assert_int_eq(px_ident_creator_lookup(100, 8, 1002, &c), 0);
	ck_assert_str_eq(c.exe, "/tmp/evil");
	px_creator_release(&c);
	free(old);
	free(now);
}
END_TEST

START_TEST(the_cap_evicts_the_oldest)
{
	px_creator_reset();
	struct px_ident *id = mk("/usr/bin/curl", 0, NULL);
	for (unsigned long long i = 0; i < PX_CREATOR_CAP + 10; i++)
		ck_assert_int_eq(px_creator_put(id, 1, 1000 + i, 1000 + i, 5000 + i), 0);
	ck_assert_uint_eq(px_creator_count(), PX_CREATOR_CAP);
	struct px_creator c;
	for (unsigned long long i = 0; i < 10; i++)
		ck_assert_int_eq(px_ident_creator_lookup(1000 + i, 0, 9000, &c), -ENOENT);
	ck_assert_int_eq(px_ident_creator_lookup(1010, 0, 9000, &c), 0);
	px_creator_release(&c);
	ck_assert_int_eq(px_ident_creator_lookup(1000 + PX_CREATOR_CAP + 9, 0, 9000, &c), 0);
	px_creator_release(&c);
	px_creator_reset();
	ck_assert_uint_eq(px_creator_count(), 0);
	free(id);
}
END_TEST

START_TEST(an_ancestry_too_long_to_keep_is_flagged)
{
	px_creator_reset();
	char longp[1024];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	struct px_ident *id = mk("/tmp/x", PX_IDENT_ANCESTORS_MAX, longp);
	ck_assert_int_eq(px_creator_put(id, 1, 7, 100, 1000), 0);
	struct px_creator c;
	ck_assert_int_eq(px_ident_creator_lookup(100, 7, 1000, &c), 0);
	ck_assert(c.too_long);
	ck_assert_str_eq(c.exe, "/tmp/x");
	ck_assert_uint_eq(c.n_ancestors, 0);
	px_creator_release(&c);
	free(id);
}
END_TEST

START_TEST(only_the_proxy_address_is_watched)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(3128)};
	inet_pton(AF_INET, "10.200.0.1", &sa.sin_addr);
	ck_assert(sv_connmon_is_proxy(&sa, sizeof(sa)));
	ck_assert(!sv_connmon_is_proxy(&sa, sizeof(sa) - 1));
	sa.sin_port = htons(3129);
	ck_assert(!sv_connmon_is_proxy(&sa, sizeof(sa)));
	sa.sin_port = htons(3128);
	inet_pton(AF_INET, "10.200.0.2", &sa.sin_addr);
	ck_assert(!sv_connmon_is_proxy(&sa, sizeof(sa)));
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(3128)};
	inet_pton(AF_INET6, "::ffff:10.200.0.1", &s6.sin6_addr);
	ck_assert(sv_connmon_is_proxy(&s6, sizeof(s6)));
	inet_pton(AF_INET6, "::10.200.0.1", &s6.sin6_addr);
	ck_assert(!sv_connmon_is_proxy(&s6, sizeof(s6)));
}
END_TEST

/* PID 1's answer: unmonitored says so; monitored takes the record once, then says missing. */
START_TEST(take_reports_unavailable_found_then_missing)
{
	px_creator_reset();
	struct px_ident *id = mk("/usr/bin/curl", 1, "/bin/sh");
	ck_assert_int_eq(px_creator_put(id, 42, 7, 100, 1000), 0);
	struct px_creator c;
	px_creator_set_monitored(false);
	ck_assert_int_eq(px_creator_take(100, 7, 1001, &c), PX_CREATOR_UNAVAILABLE);
	ck_assert_ptr_null(c.exe);
	px_creator_set_monitored(true);
	ck_assert_int_eq(px_creator_take(100, 7, 1001, &c), PX_CREATOR_FOUND);
	ck_assert_str_eq(c.exe, "/usr/bin/curl");
	px_creator_release(&c);
	ck_assert_int_eq(px_creator_take(100, 7, 1002, &c), PX_CREATOR_MISSING);
	free(id);
}
END_TEST

static struct pol_policy *policy(void)
{
	static const char text[] = "[network.lo]\nendpoint = 127.0.0.1:9\n"
				   "binary = /usr/local/bin/holdfd\n";
	struct pol_policy *p = calloc(1, sizeof(*p));
	struct sv_err e = {0};
	pol_init(p);
	ck_assert_msg(pol_load_buffer("t.ini", text, strlen(text), p, &e) == 0, "%s", e.msg);
	return p;
}

/* The proxy process's judgement: only a found, complete, allowed creator passes. */
START_TEST(only_an_allowed_creator_passes)
{
	struct pol_policy *pol = policy();
	char why[256];
	struct px_creator c;
	const char *anc[] = {"/bin/sh"};
	ck_assert_int_eq(px_creator_from(&c, 5, false, "/usr/local/bin/holdfd", anc, 1), 0);
	ck_assert(px_creator_allowed(PX_CREATOR_FOUND, &c, pol, "127.0.0.1", 9, why, sizeof(why)));
	ck_assert(!px_creator_allowed(PX_CREATOR_FOUND, &c, pol, "127.0.0.1", 10, why,
				      sizeof(why)));
	ck_assert_msg(strstr(why, "connection created by '/usr/local/bin/holdfd'"), "%s", why);
	px_creator_release(&c);

	ck_assert_int_eq(px_creator_from(&c, 5, false, "/usr/local/bin/borrow", anc, 1), 0);
	ck_assert(!px_creator_allowed(PX_CREATOR_FOUND, &c, pol, "127.0.0.1", 9, why,
				      sizeof(why)));
	ck_assert_msg(strstr(why, "connection created by '/usr/local/bin/borrow': "), "%s", why);
	px_creator_release(&c);

	/* An allowed exe whose ancestry did not fit is still denied. */
	ck_assert_int_eq(px_creator_from(&c, 5, true, "/usr/local/bin/holdfd", anc, 1), 0);
	ck_assert_uint_eq(c.n_ancestors, 0);
	ck_assert(!px_creator_allowed(PX_CREATOR_FOUND, &c, pol, "127.0.0.1", 9, why,
				      sizeof(why)));
	ck_assert_msg(strstr(why, "too long"), "%s", why);
	px_creator_release(&c);

	ck_assert(!px_creator_allowed(PX_CREATOR_MISSING, NULL, pol, "127.0.0.1", 9, why,
				      sizeof(why)));
	ck_assert_str_eq(why, PX_CREATOR_REASON_NONE);
	ck_assert(!px_creator_allowed(PX_CREATOR_UNAVAILABLE, NULL, pol, "127.0.0.1", 9, why,
				      sizeof(why)));
	ck_assert_str_eq(why, PX_CREATOR_REASON_UNAVAILABLE);
	/* FOUND without a record (a confused caller) is missing, never allowed. */
	ck_assert(!px_creator_allowed(PX_CREATOR_FOUND, NULL, pol, "127.0.0.1", 9, why,
				      sizeof(why)));
	pol_free(pol);
	free(pol);
}
END_TEST

static Suite *creator_suite(void)
{
	Suite *s = suite_create("px_creator");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, record_is_taken_once_with_exe_and_ancestors);
	tcase_add_test(tc, first_connect_on_a_socket_names_its_creator);
	tcase_add_test(tc, cookie_mismatch_and_expiry_deny);
	tcase_add_test(tc, a_dead_sockets_inode_is_replaced);
	tcase_add_test(tc, the_cap_evicts_the_oldest);
	tcase_add_test(tc, an_ancestry_too_long_to_keep_is_flagged);
	tcase_add_test(tc, only_the_proxy_address_is_watched);
	tcase_add_test(tc, take_reports_unavailable_found_then_missing);
	tcase_add_test(tc, only_an_allowed_creator_passes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(creator_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
