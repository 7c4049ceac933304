/* Unit tests for supervisor/entropy: getrandom(2) as mbedTLS's only entropy source.
 *
 * A seccomp filter makes getrandom fail to prove that seeding then fails instead of falling back
 * to /dev/urandom.
 */
#include <check.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include "supervisor/entropy.h"

static int dummy_source(void *data, unsigned char *out, size_t len, size_t *olen)
{
	(void)data;
	memset(out, 0, len);
	*olen = len;
	return 0;
}

/* How many more sources fit: MBEDTLS_ENTROPY_MAX_SOURCES minus those already registered. */
static int free_source_slots(mbedtls_entropy_context *ctx)
{
	int n = 0;
	while (mbedtls_entropy_add_source(ctx, dummy_source, NULL, 1,
					  MBEDTLS_ENTROPY_SOURCE_WEAK) == 0)
		n++;
	return n;
}

START_TEST(getrandom_source_fills_every_byte)
{
	unsigned char a[1000], b[1000];
	size_t olen = 0;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(sv_entropy_getrandom(NULL, a, sizeof(a), &olen), 0);
	ck_assert_uint_eq(olen, sizeof(a));
	ck_assert_int_eq(sv_entropy_getrandom(NULL, b, sizeof(b), &olen), 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	int zeros = 0; /* the tail is filled too: ~4 zero bytes expected in 1000 */
	for (size_t i = 0; i < sizeof(a); i++)
		zeros += a[i] == 0;
	ck_assert_int_lt(zeros, 40);
}
END_TEST

START_TEST(entropy_setup_leaves_getrandom_as_the_only_source)
{
	mbedtls_entropy_context plain, ours;
	mbedtls_entropy_init(&plain);
	int plain_free = free_source_slots(&plain);
	mbedtls_entropy_free(&plain);
	ck_assert_int_lt(plain_free, MBEDTLS_ENTROPY_MAX_SOURCES); /* defaults exist */
	mbedtls_entropy_init(&plain); /* mbedTLS 3.6 has one default: the platform source */
	ck_assert_ptr_ne((void *)plain.MBEDTLS_PRIVATE(source)[0].MBEDTLS_PRIVATE(f_source),
			 (void *)sv_entropy_getrandom);
	mbedtls_entropy_free(&plain);

	struct sv_err err = {0};
	ck_assert_msg(sv_entropy_setup(&ours, &err) == 0, "%s", err.msg);
	/* Exactly one source left after setup, and it is ours: the defaults are gone. */
	ck_assert_int_eq(ours.MBEDTLS_PRIVATE(source_count), 1);
	ck_assert_ptr_eq((void *)ours.MBEDTLS_PRIVATE(source)[0].MBEDTLS_PRIVATE(f_source),
			 (void *)sv_entropy_getrandom);
	ck_assert_int_eq(free_source_slots(&ours), MBEDTLS_ENTROPY_MAX_SOURCES - 1);
	mbedtls_entropy_free(&ours);
}
END_TEST

START_TEST(ctr_drbg_seeds_from_the_getrandom_source)
{
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	struct sv_err err = {0};
	ck_assert_msg(sv_entropy_setup(&ent, &err) == 0, "%s", err.msg);
	mbedtls_ctr_drbg_init(&drbg);
	static const unsigned char pers[] = "entropy test";
	ck_assert_int_eq(
	    mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, pers, sizeof(pers) - 1), 0);
	unsigned char a[64], b[64];
	ck_assert_int_eq(mbedtls_ctr_drbg_random(&drbg, a, sizeof(a)), 0);
	ck_assert_int_eq(mbedtls_ctr_drbg_random(&drbg, b, sizeof(b)), 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
}
END_TEST

START_TEST(seeding_fails_hard_when_getrandom_fails)
{
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	struct sv_err err = {0};
	ck_assert_msg(sv_entropy_setup(&ent, &err) == 0, "%s", err.msg);
	mbedtls_ctr_drbg_init(&drbg);
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(getrandom), 0), 0);
	ck_assert_int_eq(seccomp_load(f), 0);
	seccomp_release(f);

	unsigned char buf[32];
	size_t olen = 99;
	ck_assert_int_eq(sv_entropy_getrandom(NULL, buf, sizeof(buf), &olen),
			 MBEDTLS_ERR_ENTROPY_SOURCE_FAILED);
	ck_assert_uint_eq(olen, 0);
	/* /dev/urandom is still there: nothing falls back to it. */
	ck_assert_int_eq(access("/dev/urandom", R_OK), 0);
	ck_assert_int_ne(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
}
END_TEST

static Suite *entropy_suite(void)
{
	Suite *s = suite_create("entropy");
	TCase *te = tcase_create("entropy");
	tcase_add_test(te, getrandom_source_fills_every_byte);
	tcase_add_test(te, entropy_setup_leaves_getrandom_as_the_only_source);
	tcase_add_test(te, ctr_drbg_seeds_from_the_getrandom_source);
	tcase_add_test(te, seeding_fails_hard_when_getrandom_fails);
	suite_add_tcase(s, te);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(entropy_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
