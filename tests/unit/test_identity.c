/* Unit tests for identity resolution, the bounded account-file parser and the privilege drop.
 *
 * Resolution runs against fake /etc/passwd and /etc/group in a temporary image root. The drop
 * tests need root with CAP_SETUID, CAP_SETGID and CAP_SETPCAP; each runs in a grandchild that
 * reports what the kernel says afterwards through a pipe and _exits. Without root they skip
 * (CI=true turns a skip into a failure).
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/isolation/identity.h"
#include "supervisor/spawn.h"

static const char PASSWD[] = "root:x:0:0:root:/root:/bin/bash\n"
			     "toor:x:0:0::/root:/bin/sh\n"
			     "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
			     "sandbox:x:1000:1000::/sandbox:/bin/bash\n"
			     "app:x:1001:1001:App User:/home/app:/bin/sh\n"
			     "nohome:x:1002:1002::relative/dir:/bin/sh\n"
			     "gzero:x:1003:0::/home/gzero:/bin/sh\n"
			     "member0:x:1004:1004::/home/member0:/bin/sh\n";

static const char GROUP[] = "root:x:0:member0\n"
			    "staff:x:50:app\n"
			    "sandbox:x:1000:\n"
			    "app:x:1001:\n"
			    "nohome:x:1002:\n"
			    "member0:x:1004:\n"
			    "dev:x:2000:app,sandbox\n"
			    "docker:x:2001:sandbox2,app\n";

static char g_root[64];

static void write_file(const char *rel, const char *data, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", g_root, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(sv_write_all(fd, data, len), 0);
	close(fd);
}

static void write_str(const char *rel, const char *data)
{
	write_file(rel, data, strlen(data));
}

static void make_root(bool with_accounts)
{
	snprintf(g_root, sizeof(g_root), "/tmp/sv-identity-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_root));
	char etc[128];
	snprintf(etc, sizeof(etc), "%s/etc", g_root);
	ck_assert_int_eq(mkdir(etc, 0755), 0);
	if (with_accounts) {
		write_str("etc/passwd", PASSWD);
		write_str("etc/group", GROUP);
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(p);
	return 0;
}

static void setup(void)
{
	make_root(true);
}

static void teardown(void)
{
	nftw(g_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct sv_identity_input input(const char *user, const char *group)
{
	return (struct sv_identity_input){
	    .run_as_user = user, .run_as_group = group, .root = g_root, .workdir = "/work"};
}

static void assert_groups(const struct sv_identity *id, const gid_t *want, size_t n)
{
	ck_assert_uint_eq(id->n_groups, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(id->groups[i], want[i]);
}

/* --- resolution ------------------------------------------------------------------------- */

START_TEST(omitted_policy_without_driver_input_is_sandbox_sandbox)
{
	struct sv_identity_input in = input(NULL, "");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1000);
	ck_assert_uint_eq(id.gid, 1000);
	assert_groups(&id, (gid_t[]){1000, 2000}, 2);
	ck_assert_str_eq(id.user, "sandbox");
	ck_assert_str_eq(id.home, "/sandbox");
	ck_assert_str_eq(id.source, "default");
	ck_assert(!id.numeric && !id.oci);
}
END_TEST

START_TEST(named_policy_user_gets_passwd_home_and_group_memberships)
{
	struct sv_identity_input in = input("app", "app");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1001);
	ck_assert_uint_eq(id.gid, 1001);
	assert_groups(&id, (gid_t[]){50, 1001, 2000, 2001}, 4);
	ck_assert_str_eq(id.user, "app");
	ck_assert_str_eq(id.home, "/home/app");
}
END_TEST

START_TEST(named_user_without_absolute_home_falls_back_to_home_slash_user)
{
	struct sv_identity_input in = input("nohome", "nohome");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_str_eq(id.home, "/home/nohome");
}
END_TEST

START_TEST(numeric_policy_ids_need_no_account_files)
{
	teardown();
	make_root(false); /* no /etc/passwd, no /etc/group */
	struct sv_identity_input in = input("1234", "4321");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1234);
	ck_assert_uint_eq(id.gid, 4321);
	ck_assert_uint_eq(id.n_groups, 0);
	ck_assert(id.numeric);
	ck_assert_str_eq(id.user, "sandbox");
	ck_assert_str_eq(id.home, "/sandbox");
}
END_TEST

START_TEST(missing_sandbox_user_is_fatal)
{
	write_str("etc/passwd", "app:x:1001:1001::/home/app:/bin/sh\n");
	struct sv_identity_input in = input(NULL, NULL);
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "user 'sandbox' not found"));
	ck_assert_ptr_nonnull(strstr(err.msg, "run_as_user (omitted"));
}
END_TEST

START_TEST(missing_sandbox_group_is_fatal)
{
	write_str("etc/group", "app:x:1001:\n");
	struct sv_identity_input in = input(NULL, NULL);
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "group 'sandbox' not found"));
}
END_TEST

START_TEST(missing_passwd_file_is_fatal_for_a_named_user)
{
	teardown();
	make_root(false);
	struct sv_identity_input in = input("app", "1001");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "does not exist"));
}
END_TEST

struct root_case {
	const char *name, *user, *group, *uid, *gid, *oci;
	const char *why; /* a part of the message, or NULL */
};

static const struct root_case root_cases[] = {
    {"policy user root", "root", "app", NULL, NULL, NULL},
    {"policy user 0", "0", "app", NULL, NULL, NULL},
    {"policy user 000", "000", "app", NULL, NULL, NULL},
    {"policy user with uid 0 in passwd", "toor", "app", NULL, NULL, NULL, "'toor' has uid 0"},
    {"policy group root", "app", "root", NULL, NULL, NULL},
    {"policy group 0", "app", "0", NULL, NULL, NULL},
    {"member of group 0", "member0", "member0", NULL, NULL, NULL, "group 'root' (gid 0)"},
    {"driver uid 0", NULL, NULL, "0", "1000", NULL},
    {"driver gid 0", NULL, NULL, "1000", "0", NULL},
    {"OCI 0:0", NULL, NULL, "", "", "0:0"},
    {"OCI 0", NULL, NULL, NULL, NULL, "0"},
    {"OCI root", NULL, NULL, NULL, NULL, "root"},
    {"OCI app:0", NULL, NULL, NULL, NULL, "app:0"},
    {"OCI app:root", NULL, NULL, NULL, NULL, "app:root"},
    {"OCI user with primary gid 0", NULL, NULL, NULL, NULL, "gzero", "primary group"},
    {"OCI user with uid 0 in passwd", NULL, NULL, NULL, NULL, "toor:app", "has uid 0"},
    {"OCI group 0 filling an omitted group", "app", NULL, NULL, NULL, "sandbox:0"},
};

START_TEST(root_is_refused_in_every_form)
{
	const struct root_case *c = &root_cases[_i];
	struct sv_identity_input in = input(c->user, c->group);
	in.sandbox_uid = c->uid;
	in.sandbox_gid = c->gid;
	in.oci_user = c->oci;
	struct sv_identity id;
	struct sv_err err = {0};
	int r = sv_identity_resolve(&in, &id, &err);
	ck_assert_msg(r == -EPERM, "%s: got %d (%s)", c->name, r, err.msg);
	ck_assert_msg(strncmp(err.msg, "refusing to run the agent as root", 33) == 0, "%s: %s",
		      c->name, err.msg);
	ck_assert_msg(!c->why || strstr(err.msg, c->why), "%s: %s", c->name, err.msg);
	ck_assert_uint_eq(id.uid, 0); /* nothing half-filled is left behind */
}
END_TEST

START_TEST(driver_uid_gid_give_a_numeric_identity)
{
	struct sv_identity_input in = input(NULL, NULL);
	in.sandbox_uid = "2345";
	in.sandbox_gid = "2346";
	in.oci_user = ""; /* what the Kubernetes driver sends alongside */
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 2345);
	ck_assert_uint_eq(id.gid, 2346);
	ck_assert_uint_eq(id.n_groups, 0);
	ck_assert_str_eq(id.home, "/sandbox");
	ck_assert_str_eq(id.user, "sandbox");
	ck_assert_str_eq(id.source, "OPENSHELL_SANDBOX_UID/GID");
}
END_TEST

START_TEST(driver_ids_and_policy_must_agree)
{
	struct sv_identity_input in = input("sandbox", "sandbox");
	in.sandbox_uid = "1000";
	in.sandbox_gid = "1000";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1000);

	in.run_as_user = "app";
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "conflicts with OPENSHELL_SANDBOX_UID=1000"));
	in.run_as_user = NULL;
	in.run_as_group = "2001";
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "conflicts with OPENSHELL_SANDBOX_GID=1000"));
}
END_TEST

START_TEST(uid_without_gid_is_fatal_and_names_both)
{
	struct sv_identity_input in = input(NULL, NULL);
	in.sandbox_uid = "1000";
	in.sandbox_gid = ""; /* Docker's "unset" */
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "must be supplied together"));
	ck_assert_ptr_nonnull(strstr(err.msg, "OPENSHELL_SANDBOX_GID is not"));
	in.sandbox_uid = NULL;
	in.sandbox_gid = "1000";
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "OPENSHELL_SANDBOX_UID is not"));
}
END_TEST

START_TEST(oci_user_conflicting_with_driver_ids_is_fatal)
{
	struct sv_identity_input in = input(NULL, NULL);
	in.sandbox_uid = "1000";
	in.sandbox_gid = "1000";
	in.oci_user = "app";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "OPENSHELL_OCI_IMAGE_USER conflicts"));
	ck_assert_ptr_nonnull(strstr(err.msg, "OPENSHELL_SANDBOX_UID"));
}
END_TEST

START_TEST(out_of_range_ids_are_refused)
{
	struct sv_identity_input in = input(NULL, NULL);
	in.sandbox_uid = "4294967295";
	in.sandbox_gid = "1000";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "OPENSHELL_SANDBOX_UID"));
	ck_assert_ptr_nonnull(strstr(err.msg, "1..4294967294"));

	in.sandbox_uid = "99999999999999999999999"; /* overflows 64 bits too */
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ERANGE);

	in = input("4294967295", "1000");
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "run_as_user"));

	in = input("4294967294", "4294967294"); /* the top of the range is fine */
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 4294967294U);
}
END_TEST

START_TEST(garbage_ids_are_refused_with_the_input_named)
{
	struct sv_identity_input in = input(NULL, NULL);
	struct sv_identity id;
	struct sv_err err = {0};
	static const char *const bad_env[] = {"12ab", " 1000", "+1000", "-1", "0x10", "1e3"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad_env); i++) {
		in.sandbox_uid = "1000";
		in.sandbox_gid = bad_env[i];
		ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
		ck_assert_msg(strstr(err.msg, "OPENSHELL_SANDBOX_GID") != NULL, "%s", err.msg);
	}
	char big[SV_ACCT_FIELD_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	static const char *const bad_names[] = {"a b", "app:x", "tab\there", "new\nline", "\x7f"};
	for (size_t i = 0; i <= SV_ARRAY_SIZE(bad_names); i++) {
		in = input(i < SV_ARRAY_SIZE(bad_names) ? bad_names[i] : big, "app");
		ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
		ck_assert_msg(strstr(err.msg, "run_as_user") && strstr(err.msg, "malformed"), "%s",
			      err.msg);
	}
	in = input("nosuchuser", "app");
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "user 'nosuchuser' not found"));
}
END_TEST

START_TEST(oci_user_and_group_names_resolve_from_the_image)
{
	struct sv_identity_input in = input(NULL, NULL);
	in.oci_user = "app:dev";
	in.sandbox_uid = "";
	in.sandbox_gid = ""; /* Docker sends both empty */
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1001);
	ck_assert_uint_eq(id.gid, 2000);
	assert_groups(&id, (gid_t[]){50, 2000, 2001}, 3); /* initgroups(app, 2000) */
	ck_assert(id.oci);
	ck_assert_str_eq(id.user, "app");
	ck_assert_str_eq(id.home, "/work"); /* the workdir for OCI identities */
	ck_assert_str_eq(id.source, "OPENSHELL_OCI_IMAGE_USER");
}
END_TEST

START_TEST(oci_numeric_user_and_group_need_no_passwd)
{
	teardown();
	make_root(false);
	struct sv_identity_input in = input(NULL, NULL);
	in.oci_user = "1000:1000";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1000);
	ck_assert_uint_eq(id.gid, 1000);
	ck_assert_uint_eq(id.n_groups, 0);
	ck_assert(id.numeric && id.oci);
	ck_assert_str_eq(id.home, "/work");
}
END_TEST

START_TEST(oci_numeric_user_without_group_takes_the_passwd_primary_gid)
{
	struct sv_identity_input in = input(NULL, NULL);
	in.oci_user = "1001";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1001);
	ck_assert_uint_eq(id.gid, 1001);

	in.oci_user = "4321"; /* no passwd entry to take a group from */
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "no entry for uid 4321"));
}
END_TEST

START_TEST(oci_user_empty_with_omitted_run_as_user_is_fatal)
{
	struct sv_identity_input in = input(NULL, "app");
	in.oci_user = "";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(
	    strstr(err.msg, "OCI USER is required because run_as_user is omitted"));

	/* Present-but-empty differs from absent: absent falls back to sandbox. */
	in.oci_user = NULL;
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1000);

	/* A policy that names both needs nothing from OCI. */
	in = input("app", "app");
	in.oci_user = "";
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1001);
	ck_assert(!id.oci);
	ck_assert_str_eq(id.home, "/home/app");
}
END_TEST

START_TEST(oci_fills_only_the_omitted_component)
{
	struct sv_identity_input in = input("app", NULL);
	in.oci_user = "sandbox:docker";
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1001);
	ck_assert_uint_eq(id.gid, 2001);
	ck_assert(id.oci);

	in.oci_user = "sandbox"; /* no group: the OCI user's primary group */
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.uid, 1001);
	ck_assert_uint_eq(id.gid, 1000);

	in.oci_user = "app:";
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "empty group component"));

	in = input(NULL, "dev");
	in.oci_user = "1001:nosuchgroup"; /* the explicit group wins; OCI's is not consulted */
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_uint_eq(id.gid, 2000);
}
END_TEST

START_TEST(shell_is_bash_when_the_image_has_it_else_sh)
{
	struct sv_identity_input in = input("1234", "1234");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_str_eq(id.shell, "/bin/sh");

	char bin[128];
	snprintf(bin, sizeof(bin), "%s/bin", g_root);
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	write_str("bin/bash", "#!/bin/false\n");
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_str_eq(id.shell, "/bin/sh"); /* not executable */
	snprintf(bin, sizeof(bin), "%s/bin/bash", g_root);
	ck_assert_int_eq(chmod(bin, 0755), 0);
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	ck_assert_str_eq(id.shell, "/bin/bash");
}
END_TEST

START_TEST(env_values_yield_to_the_user_environment)
{
	struct sv_identity_input in = input("app", "app");
	struct sv_identity id;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_resolve(&in, &id, &err), 0);
	struct sv_identity_env env;
	sv_identity_env_values(&id, false, false, false, &env);
	ck_assert_str_eq(env.home, "/home/app");
	ck_assert_str_eq(env.user, "app");
	ck_assert_str_eq(env.shell, id.shell);
	sv_identity_env_values(&id, true, false, true, &env);
	ck_assert_ptr_null(env.home);
	ck_assert_str_eq(env.user, "app");
	ck_assert_ptr_null(env.shell);
}
END_TEST

/* --- bounded parsing --------------------------------------------------------------------- */

static int open_passwd(struct sv_acct_file *f, struct sv_err *err)
{
	return sv_acct_open(f, SV_ACCT_PASSWD, g_root, "etc/passwd", err);
}

START_TEST(account_file_over_one_mib_is_refused)
{
	size_t n = SV_ACCT_FILE_MAX + 1;
	char *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	memset(buf, '#', n);
	write_file("etc/passwd", buf, n);
	struct sv_acct_file f;
	struct sv_err err = {0};
	ck_assert_int_eq(open_passwd(&f, &err), -EFBIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "larger than 1048576 bytes"));

	/* Exactly 1 MiB is fine: a comment block with the entry at the end. */
	static const char entry[] = "\napp:x:1001:1001::/home/app:/bin/sh\n";
	memcpy(buf + SV_ACCT_FILE_MAX - (sizeof(entry) - 1), entry, sizeof(entry) - 1);
	write_file("etc/passwd", buf, SV_ACCT_FILE_MAX);
	free(buf);
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	struct sv_pwent pw;
	ck_assert_int_eq(sv_passwd_find_name(&f, "app", &pw, &err), 1);
	ck_assert_uint_eq(pw.uid, 1001);
	sv_acct_close(&f);
}
END_TEST

START_TEST(oversized_lines_are_skipped_unless_they_name_the_account)
{
	char line[SV_ACCT_LINE_MAX + 64];
	int n = snprintf(line, sizeof(line), "other:x:5:5:");
	memset(line + n, 'g', SV_ACCT_LINE_MAX);
	snprintf(line + n + SV_ACCT_LINE_MAX, sizeof(line) - (size_t)n - SV_ACCT_LINE_MAX,
		 ":/home/o:/bin/sh\n");
	char *file = malloc(sizeof(line) + 128);
	snprintf(file, sizeof(line) + 128, "# header\n\n%sapp:x:1001:1001::/home/app:/bin/sh\n",
		 line);
	write_str("etc/passwd", file);
	struct sv_acct_file f;
	struct sv_err err = {0};
	struct sv_pwent pw;
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	ck_assert_uint_eq(f.skipped, 1);
	ck_assert_uint_eq(f.first_skipped, 3); /* comment and blank lines are not malformed */
	ck_assert_int_eq(sv_passwd_find_name(&f, "app", &pw, &err), 1);
	ck_assert_uint_eq(pw.line, 4);
	ck_assert_int_eq(sv_passwd_find_name(&f, "other", &pw, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, ":3: the entry for 'other' is malformed"));
	ck_assert_int_eq(sv_passwd_find_uid(&f, 5, &pw, &err), 0);
	sv_acct_close(&f);
	free(file);
}
END_TEST

START_TEST(fields_over_one_kib_are_skipped_and_one_kib_is_accepted)
{
	char gecos[SV_ACCT_FIELD_MAX + 2];
	memset(gecos, 'g', sizeof(gecos) - 1);
	gecos[sizeof(gecos) - 1] = '\0';
	char file[4 * SV_ACCT_FIELD_MAX];
	snprintf(file, sizeof(file), "long:x:7:7:%s:/h:/bin/sh\nok:x:8:8:%.1024s:/h:/bin/sh\n",
		 gecos, gecos);
	write_str("etc/passwd", file);
	struct sv_acct_file f;
	struct sv_err err = {0};
	struct sv_pwent pw;
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	ck_assert_uint_eq(f.skipped, 1);
	ck_assert_int_eq(sv_passwd_find_name(&f, "long", &pw, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "field longer than 1024 bytes"));
	ck_assert_int_eq(sv_passwd_find_name(&f, "ok", &pw, &err), 1);
	ck_assert_uint_eq(pw.uid, 8);
	sv_acct_close(&f);
}
END_TEST

START_TEST(last_line_without_newline_and_crlf_lines_parse)
{
	write_str("etc/passwd", "a:x:11:11::/home/a:/bin/sh\r\nb:x:12:12::/home/b:/bin/sh");
	struct sv_acct_file f;
	struct sv_err err = {0};
	struct sv_pwent pw;
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	ck_assert_uint_eq(f.skipped, 0);
	ck_assert_int_eq(sv_passwd_find_name(&f, "a", &pw, &err), 1);
	ck_assert_str_eq(pw.dir, "/home/a");
	ck_assert_int_eq(sv_passwd_find_name(&f, "b", &pw, &err), 1);
	ck_assert_uint_eq(pw.uid, 12);
	ck_assert_str_eq(pw.dir, "/home/b");
	sv_acct_close(&f);

	/* The last field of a CRLF line must not keep the '\r': group members are matched. */
	write_str("etc/group", "dev:x:2000:a\r\nops:x:2001:b,a\r\n");
	gid_t gids[4];
	size_t n = 0;
	ck_assert_int_eq(sv_acct_open(&f, SV_ACCT_GROUP, g_root, "etc/group", &err), 0);
	ck_assert_int_eq(sv_group_memberships(&f, "a", gids, 4, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	sv_acct_close(&f);
}
END_TEST

START_TEST(malformed_lines_are_counted_and_skipped)
{
	static const char file[] = "nofields\n"
				   "short:x:1:1::/h\n"
				   "toomany:x:1:1::/h:/bin/sh:extra\n"
				   "baduid:x:12a:1::/h:/bin/sh\n"
				   "bigid:x:4294967295:1::/h:/bin/sh\n"
				   ":x:3:3::/h:/bin/sh\n"
				   "+nis::::::\n"
				   "sp ace:x:4:4::/h:/bin/sh\n"
				   "nul:x:5:5::/h\0:/bin/sh\n"
				   "good:x:6:6::/h:/bin/sh\n";
	write_file("etc/passwd", file, sizeof(file) - 1);
	struct sv_acct_file f;
	struct sv_err err = {0};
	struct sv_pwent pw;
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	ck_assert_uint_eq(f.skipped, 9);
	ck_assert_uint_eq(f.first_skipped, 1);
	ck_assert_int_eq(sv_passwd_find_name(&f, "good", &pw, &err), 1);
	ck_assert_uint_eq(pw.line, 10);
	ck_assert_int_eq(sv_passwd_find_name(&f, "baduid", &pw, &err), -EINVAL);
	ck_assert_int_eq(sv_passwd_find_name(&f, "nul", &pw, &err), -EINVAL);
	ck_assert_int_eq(sv_passwd_find_uid(&f, 4, &pw, &err), 0);
	sv_acct_close(&f);
}
END_TEST

START_TEST(duplicate_names_are_ambiguous)
{
	write_str("etc/passwd", "app:x:1001:1001::/a:/bin/sh\napp:x:1001:1001::/b:/bin/sh\n"
				"x1:x:7:7::/:/bin/sh\nx2:x:7:7::/:/bin/sh\n"
				"y1:x:8:8::/:/bin/sh\ny2:x:8:9::/:/bin/sh\n");
	struct sv_acct_file f;
	struct sv_err err = {0};
	struct sv_pwent pw;
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	ck_assert_int_eq(sv_passwd_find_name(&f, "app", &pw, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "ambiguous"));
	ck_assert_int_eq(sv_passwd_find_uid(&f, 7, &pw, &err), 1); /* same gid: fine */
	ck_assert_str_eq(pw.name, "x1");
	ck_assert_int_eq(sv_passwd_find_uid(&f, 8, &pw, &err), -EINVAL);
	sv_acct_close(&f);
}
END_TEST

START_TEST(symlinks_and_fifos_are_not_account_files)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/etc/passwd", g_root);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
	struct sv_acct_file f;
	struct sv_err err = {0};
	ck_assert_int_eq(open_passwd(&f, &err), -ELOOP);
	ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(open_passwd(&f, &err), -EINVAL); /* and it did not block */
	ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(open_passwd(&f, &err), 0);
	ck_assert(f.missing);
	struct sv_pwent pw;
	ck_assert_int_eq(sv_passwd_find_name(&f, "app", &pw, &err), 0);
	sv_acct_close(&f);
}
END_TEST

START_TEST(memberships_are_bounded)
{
	char *file = malloc(80 * 32);
	size_t off = 0;
	for (int i = 0; i < SV_ID_GROUPS_MAX; i++)
		off += (size_t)snprintf(file + off, 80 * 32 - off, "g%d:x:%d:u\n", i, 3000 + i);
	write_str("etc/group", file);
	struct sv_acct_file f;
	struct sv_err err = {0};
	gid_t gids[SV_ID_GROUPS_MAX];
	size_t n = 0;
	ck_assert_int_eq(sv_acct_open(&f, SV_ACCT_GROUP, g_root, "etc/group", &err), 0);
	ck_assert_int_eq(sv_group_memberships(&f, "u", gids, SV_ID_GROUPS_MAX, &n, &err), 0);
	ck_assert_uint_eq(n, SV_ID_GROUPS_MAX);
	sv_acct_close(&f);
	snprintf(file + off, 80 * 32 - off, "one-too-many:x:4000:u\n");
	write_str("etc/group", file);
	n = 0;
	ck_assert_int_eq(sv_acct_open(&f, SV_ACCT_GROUP, g_root, "etc/group", &err), 0);
	ck_assert_int_eq(sv_group_memberships(&f, "u", gids, SV_ID_GROUPS_MAX, &n, &err), -E2BIG);
	sv_acct_close(&f);
	free(file);
}
END_TEST

/* --- the drop (root only) ------------------------------------------------------------------ */

static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{0}};
	return syscall(SYS_capget, &h, d) == 0 && (d[cap / 32].effective & (1U << (cap % 32)));
}

static bool privileged(const char *test)
{
	if (geteuid() == 0 && have_cap(CAP_SETUID) && have_cap(CAP_SETGID) && have_cap(CAP_SETPCAP))
		return true;
	const char *ci = getenv("CI");
	if (ci && strcmp(ci, "true") == 0)
		ck_abort_msg("%s: needs root with CAP_SETUID/SETGID/SETPCAP (CI=true)", test);
	fprintf(stderr, "SKIP %s: needs root with CAP_SETUID, CAP_SETGID and CAP_SETPCAP\n", test);
	return false;
}

/* Remove @cap from the effective and permitted sets of the calling process. */
static void lose_cap(int cap)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{0}};
	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	d[cap / 32].effective &= ~(1U << (cap % 32));
	d[cap / 32].permitted &= ~(1U << (cap % 32));
	ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
}

struct obs {
	int r, code;
	char msg[SV_ERR_MSG_MAX];
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int ngroups;
	gid_t groups[SV_ID_GROUPS_MAX + 1];
	unsigned long long inh, prm, eff, bnd, amb;
	int nnp, dumpable, setuid0, secbits;
	unsigned long long core_cur, core_max;
};

static unsigned long long status_field(const char *status, const char *key)
{
	const char *p = strstr(status, key);
	ck_assert_ptr_nonnull(p);
	return strtoull(p + strlen(key), NULL, 16);
}

static void observe(struct obs *o)
{
	getresuid(&o->ruid, &o->euid, &o->suid);
	getresgid(&o->rgid, &o->egid, &o->sgid);
	o->ngroups = getgroups(SV_ID_GROUPS_MAX + 1, o->groups);
	char status[8192] = {0};
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, status, sizeof(status) - 1);
		(void)n;
		close(fd);
	}
	o->inh = status_field(status, "\nCapInh:");
	o->prm = status_field(status, "\nCapPrm:");
	o->eff = status_field(status, "\nCapEff:");
	o->bnd = status_field(status, "\nCapBnd:");
	o->amb = status_field(status, "\nCapAmb:");
	o->nnp = (int)status_field(status, "\nNoNewPrivs:");
	o->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	o->secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	struct rlimit rl;
	getrlimit(RLIMIT_CORE, &rl);
	o->core_cur = rl.rlim_cur;
	o->core_max = rl.rlim_max;
	o->setuid0 = setuid(0);
}

/* Run @fn in a grandchild that reports a struct obs through a pipe and _exits: no atexit
 * handlers, and no LeakSanitizer pass that would need to ptrace a non-dumpable process. */
static struct obs in_grandchild(void (*fn)(struct obs *, void *), void *arg)
{
	int fds[2];
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct obs o = {0};
		fn(&o, arg);
		(void)sv_write_all(fds[1], &o, sizeof(o));
		_exit(0);
	}
	close(fds[1]);
	struct obs o;
	size_t got = 0;
	while (got < sizeof(o)) {
		ssize_t n = read(fds[0], (char *)&o + got, sizeof(o) - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	close(fds[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return o;
}

struct drop_args {
	struct sv_identity_plan *plan;
	void (*before)(struct sv_identity_plan *);
};

static void do_drop(struct obs *o, void *arg)
{
	struct drop_args *a = arg;
	struct sv_err err = {0};
	if (a->before)
		a->before(a->plan);
	o->r = sv_identity_drop(a->plan, &err);
	o->code = err.code;
	memcpy(o->msg, err.msg, sizeof(o->msg));
	observe(o);
}

/* Run @before (may be NULL) and the drop in a grandchild; return what it saw. */
static struct obs run_drop(struct sv_identity_plan *plan, void (*before)(struct sv_identity_plan *))
{
	struct drop_args a = {plan, before};
	return in_grandchild(do_drop, &a);
}

static struct sv_identity test_identity(void)
{
	struct sv_identity id = {.uid = 4242, .gid = 4243, .n_groups = 3};
	id.groups[0] = 5001; /* unsorted on purpose: the plan sorts */
	id.groups[1] = 4243;
	id.groups[2] = 5000;
	return id;
}

START_TEST(drop_reaches_target_ids_with_no_capabilities_left)
{
	if (!privileged(__func__))
		return;
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	ck_assert(plan.cap_last_exact);
	struct obs o = run_drop(&plan, NULL);
	ck_assert_msg(o.r == 0, "drop failed: %s", o.msg);
	ck_assert_uint_eq(o.ruid, 4242);
	ck_assert_uint_eq(o.euid, 4242);
	ck_assert_uint_eq(o.suid, 4242);
	ck_assert_uint_eq(o.rgid, 4243);
	ck_assert_uint_eq(o.egid, 4243);
	ck_assert_uint_eq(o.sgid, 4243);
	ck_assert_int_eq(o.ngroups, 3);
	ck_assert_uint_eq(o.groups[0], 4243);
	ck_assert_uint_eq(o.groups[1], 5000);
	ck_assert_uint_eq(o.groups[2], 5001);
	ck_assert_uint_eq(o.bnd, 0);
	ck_assert_uint_eq(o.eff, 0);
	ck_assert_uint_eq(o.prm, 0);
	ck_assert_uint_eq(o.inh, 0);
	ck_assert_uint_eq(o.amb, 0);
	ck_assert_int_eq(o.nnp, 1);
	ck_assert_int_eq(o.setuid0, -1);
	ck_assert_uint_eq(o.core_cur, 0);
	ck_assert_uint_eq(o.core_max, 0);
	ck_assert_int_eq(o.dumpable, 0);
	if (plan.securebits) /* NOROOT and its lock; KEEP_CAPS off and locked */
		ck_assert_int_eq(o.secbits & 0x33, 0x23);
}
END_TEST

static void give_inheritable(struct sv_identity_plan *plan)
{
	(void)plan;
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{0}};
	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	d[0].inheritable = d[0].permitted; /* what Docker before 20.10.14 handed out */
	ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
	ck_assert_int_eq(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0), 0);
}

START_TEST(drop_clears_inheritable_and_ambient_sets_left_by_the_runtime)
{
	if (!privileged(__func__))
		return;
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	struct obs o = run_drop(&plan, give_inheritable);
	ck_assert_msg(o.r == 0, "drop failed: %s", o.msg);
	ck_assert_uint_eq(o.inh, 0);
	ck_assert_uint_eq(o.amb, 0);
	ck_assert_uint_eq(o.prm, 0);
}
END_TEST

static void without_setuid(struct sv_identity_plan *plan)
{
	(void)plan;
	lose_cap(CAP_SETUID);
}

START_TEST(drop_fails_closed_without_cap_setuid)
{
	if (!privileged(__func__))
		return;
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	struct obs o = run_drop(&plan, without_setuid);
	ck_assert_int_eq(o.r, -EPERM);
	ck_assert_int_eq(o.code, EPERM);
	ck_assert_msg(strstr(o.msg, "setresuid(4242)") != NULL, "%s", o.msg);
	ck_assert_uint_eq(o.euid, 0); /* the error is reported, not a silent partial drop */
}
END_TEST

static void without_setpcap(struct sv_identity_plan *plan)
{
	(void)plan;
	lose_cap(CAP_SETPCAP);
}

START_TEST(drop_fails_closed_when_the_bounding_set_cannot_be_cleared)
{
	if (!privileged(__func__))
		return;
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	struct obs o = run_drop(&plan, without_setpcap);
	ck_assert_int_eq(o.r, -EPERM);
	ck_assert_msg(strstr(o.msg, "from the bounding set") != NULL, "%s", o.msg);
	ck_assert_uint_ne(o.bnd, 0);
}
END_TEST

static void empty_bounding_then_no_setpcap(struct sv_identity_plan *plan)
{
	for (int c = 0; c <= plan->cap_last; c++)
		ck_assert_int_eq(prctl(PR_CAPBSET_DROP, c, 0, 0, 0), 0);
	lose_cap(CAP_SETPCAP);
	struct sv_identity id = test_identity();
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(plan, &id, &err), 0); /* sees no CAP_SETPCAP */
	ck_assert(!plan->securebits);
}

START_TEST(bounding_eperm_is_tolerated_only_when_already_empty)
{
	if (!privileged(__func__))
		return;
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	struct obs o = run_drop(&plan, empty_bounding_then_no_setpcap);
	ck_assert_msg(o.r == 0, "drop failed: %s", o.msg);
	ck_assert_uint_eq(o.euid, 4242);
	ck_assert_uint_eq(o.bnd, 0);
}
END_TEST

START_TEST(plan_refuses_root_and_drop_refuses_a_root_plan)
{
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	id.uid = 0;
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), -EPERM);
	id = test_identity();
	id.groups[1] = 0;
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), -EPERM);
	memset(&plan, 0, sizeof(plan));
	plan.uid = 1000; /* gid 0 */
	ck_assert_int_eq(sv_identity_drop(&plan, &err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, "refusing to run the agent as root"));
	ck_assert_uint_eq(getgid(), getgid()); /* nothing was changed in this process */
}
END_TEST

START_TEST(plan_reads_the_kernels_last_capability)
{
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	ck_assert_ptr_nonnull(f);
	int last = -1;
	ck_assert_int_eq(fscanf(f, "%d", &last), 1);
	fclose(f);
	ck_assert_int_eq(plan.cap_last, last);
	ck_assert(plan.cap_last_exact);
	ck_assert_int_eq(prctl(PR_CAPBSET_READ, plan.cap_last + 1, 0, 0, 0), -1); /* EINVAL */
}
END_TEST

static void do_harden(struct obs *o, void *arg)
{
	(void)arg;
	struct sv_err err = {0};
	o->r = sv_identity_harden(&err);
	memcpy(o->msg, err.msg, sizeof(o->msg));
	observe(o);
	struct rlimit rl = {1024, 1024};
	o->code = setrlimit(RLIMIT_CORE, &rl) < 0 ? errno : 0; /* the hard limit holds */
}

START_TEST(harden_sets_nnp_core_limit_and_dumpable)
{
	struct obs o = in_grandchild(do_harden, NULL);
	ck_assert_msg(o.r == 0, "harden failed: %s", o.msg);
	ck_assert_int_eq(o.nnp, 1);
	ck_assert_int_eq(o.dumpable, 0);
	ck_assert_uint_eq(o.core_cur, 0);
	ck_assert_uint_eq(o.core_max, 0);
	if (!have_cap(CAP_SYS_RESOURCE))
		ck_assert_int_eq(o.code, EPERM);
}
END_TEST

START_TEST(spawned_child_execs_with_the_dropped_identity)
{
	if (!privileged(__func__))
		return;
	struct sv_identity id = test_identity();
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_identity_plan_init(&plan, &id, &err), 0);
	char *argv[] = {"/bin/cat", "/proc/self/status", NULL};
	char *envp[] = {"PATH=" SV_DEFAULT_PATH, NULL};
	struct sv_spawn opts = {
	    .argv = argv, .envp = envp, .hook = sv_identity_hook, .hook_ctx = &plan};
	struct sv_child child;
	struct sv_spawn_failure failure = {0};
	ck_assert_int_eq(sv_spawn_start(&opts, &child, &failure, &err), 0);
	ck_assert_msg(failure.exit_code == 0, "child failed: %s", failure.msg);
	char out[8192] = {0};
	size_t got = 0;
	for (;;) {
		struct pollfd pfd = {.fd = child.out_fd, .events = POLLIN};
		ck_assert_int_ge(poll(&pfd, 1, 5000), 1);
		ssize_t n = read(child.out_fd, out + got, sizeof(out) - 1 - got);
		if (n < 0 && errno == EAGAIN)
			continue;
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	int st;
	ck_assert_int_eq(waitpid(child.pid, &st, 0), child.pid);
	sv_child_close_fds(&child);
	ck_assert_ptr_nonnull(strstr(out, "\nUid:\t4242\t4242\t4242\t4242\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nGid:\t4243\t4243\t4243\t4243\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nGroups:\t4243 5000 5001"));
	ck_assert_ptr_nonnull(strstr(out, "\nCapBnd:\t0000000000000000\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nCapEff:\t0000000000000000\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nCapPrm:\t0000000000000000\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nNoNewPrivs:\t1\n"));
}
END_TEST

static Suite *identity_suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("resolve");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, omitted_policy_without_driver_input_is_sandbox_sandbox);
	tcase_add_test(tc, named_policy_user_gets_passwd_home_and_group_memberships);
	tcase_add_test(tc, named_user_without_absolute_home_falls_back_to_home_slash_user);
	tcase_add_test(tc, numeric_policy_ids_need_no_account_files);
	tcase_add_test(tc, missing_sandbox_user_is_fatal);
	tcase_add_test(tc, missing_sandbox_group_is_fatal);
	tcase_add_test(tc, missing_passwd_file_is_fatal_for_a_named_user);
	tcase_add_loop_test(tc, root_is_refused_in_every_form, 0, (int)SV_ARRAY_SIZE(root_cases));
	tcase_add_test(tc, driver_uid_gid_give_a_numeric_identity);
	tcase_add_test(tc, driver_ids_and_policy_must_agree);
	tcase_add_test(tc, uid_without_gid_is_fatal_and_names_both);
	tcase_add_test(tc, oci_user_conflicting_with_driver_ids_is_fatal);
	tcase_add_test(tc, out_of_range_ids_are_refused);
	tcase_add_test(tc, garbage_ids_are_refused_with_the_input_named);
	tcase_add_test(tc, oci_user_and_group_names_resolve_from_the_image);
	tcase_add_test(tc, oci_numeric_user_and_group_need_no_passwd);
	tcase_add_test(tc, oci_numeric_user_without_group_takes_the_passwd_primary_gid);
	tcase_add_test(tc, oci_user_empty_with_omitted_run_as_user_is_fatal);
	tcase_add_test(tc, oci_fills_only_the_omitted_component);
	tcase_add_test(tc, shell_is_bash_when_the_image_has_it_else_sh);
	tcase_add_test(tc, env_values_yield_to_the_user_environment);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, account_file_over_one_mib_is_refused);
	tcase_add_test(tc, oversized_lines_are_skipped_unless_they_name_the_account);
	tcase_add_test(tc, fields_over_one_kib_are_skipped_and_one_kib_is_accepted);
	tcase_add_test(tc, last_line_without_newline_and_crlf_lines_parse);
	tcase_add_test(tc, malformed_lines_are_counted_and_skipped);
	tcase_add_test(tc, duplicate_names_are_ambiguous);
	tcase_add_test(tc, symlinks_and_fifos_are_not_account_files);
	tcase_add_test(tc, memberships_are_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("drop");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, drop_reaches_target_ids_with_no_capabilities_left);
	tcase_add_test(tc, drop_clears_inheritable_and_ambient_sets_left_by_the_runtime);
	tcase_add_test(tc, drop_fails_closed_without_cap_setuid);
	tcase_add_test(tc, drop_fails_closed_when_the_bounding_set_cannot_be_cleared);
	tcase_add_test(tc, bounding_eperm_is_tolerated_only_when_already_empty);
	tcase_add_test(tc, plan_refuses_root_and_drop_refuses_a_root_plan);
	tcase_add_test(tc, plan_reads_the_kernels_last_capability);
	tcase_add_test(tc, harden_sets_nnp_core_limit_and_dumpable);
	tcase_add_test(tc, spawned_child_execs_with_the_dropped_identity);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(identity_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
