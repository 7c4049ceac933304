/* degrade [--no-landlock] [--no-userns] [--no-netns] [--no-mountns] [--drop-caps] -- CMD ARG...:
 * exec CMD in a weaker world. --no-netns makes unshare/clone with CLONE_NEWNET fail with EPERM,
 * --no-mountns the same with CLONE_NEWNS (a container that refuses mount namespaces).
 *
 * A raw classic-BPF filter makes the Landlock syscalls fail with ENOSYS and CLONE_NEWUSER with
 * EPERM; --drop-caps takes CAP_SETUID/CAP_SETGID from every set. Always sets no_new_privs. Built
 * without kernel headers (mkrootfs.sh passes none), so the kernel ABI bits are spelled out here.
 */
#include "common.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* <linux/filter.h>, <linux/seccomp.h>, <linux/audit.h>, <linux/capability.h> */
struct dg_sock_filter {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};

struct dg_sock_fprog {
	unsigned short len;
	struct dg_sock_filter *filter;
};

#define DG_BPF_LD_W_ABS	       0x20 /* BPF_LD | BPF_W | BPF_ABS */
#define DG_BPF_JEQ_K	       0x15 /* BPF_JMP | BPF_JEQ | BPF_K */
#define DG_BPF_JGE_K	       0x35 /* BPF_JMP | BPF_JGE | BPF_K */
#define DG_BPF_JSET_K	       0x45 /* BPF_JMP | BPF_JSET | BPF_K */
#define DG_BPF_RET_K	       0x06 /* BPF_RET | BPF_K */
#define DG_SECCOMP_MODE_FILTER 2
#define DG_RET_ALLOW	       0x7fff0000U
#define DG_RET_ERRNO(e)	       (0x00050000U | ((uint32_t)(e)&0xffffU))
#define DG_OFF_NR	       0  /* struct seccomp_data: int nr */
#define DG_OFF_ARCH	       4  /* __u32 arch */
#define DG_OFF_ARG0_LO	       16 /* __u64 args[0], low half on little-endian machines */
#define DG_CLONE_NEWNET 0x40000000U
#define DG_CLONE_NEWUSER       0x10000000U
#define DG_CLONE_NEWNS	       0x00020000U
#define DG_NONE		       0xffffffffU /* matches no system call: a disabled check */

#if defined(__x86_64__)
#define DG_ARCH	   0xc000003eU /* AUDIT_ARCH_X86_64 */
#define DG_X32_BIT 0x40000000U /* x32 numbers: denied outright, so no bypass through them */
#elif defined(__aarch64__)
#define DG_ARCH	   0xc00000b7U /* AUDIT_ARCH_AARCH64 */
#define DG_X32_BIT DG_NONE
#else
#error "degrade: unsupported architecture"
#endif

#define DG_CAP_SETGID 6
#define DG_CAP_SETUID 7
#define DG_CAP_V3     0x20080522U

struct dg_cap_header {
	uint32_t version;
	int pid;
};

struct dg_cap_data {
	uint32_t effective;
	uint32_t permitted;
	uint32_t inheritable;
};

#define DG_STMT(c, kk)                    \
	{                                 \
		(uint16_t)(c), 0, 0, (kk) \
	}
#define DG_JUMP(c, kk, t, f)                  \
	{                                     \
		(uint16_t)(c), (t), (f), (kk) \
	}

static void usage(void)
{
	fprintf(stderr,
		"usage: degrade [--no-landlock] [--no-userns] [--no-netns] [--no-mountns] "
		"[--drop-caps] -- CMD...\n");
	exit(TH_EXIT_USAGE);
}

static void drop_caps(void)
{
	static const int caps[] = {DG_CAP_SETUID, DG_CAP_SETGID};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0) < 0)
			th_die("degrade", "PR_CAPBSET_DROP");
	struct dg_cap_header h = {DG_CAP_V3, 0};
	struct dg_cap_data d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		th_die("degrade", "capget");
	uint32_t mask = ~((1U << DG_CAP_SETUID) | (1U << DG_CAP_SETGID));
	d[0].effective &= mask;
	d[0].permitted &= mask;
	d[0].inheritable &= mask;
	if (syscall(SYS_capset, &h, d) < 0)
		th_die("degrade", "capset");
	if (syscall(SYS_capget, &h, d) < 0)
		th_die("degrade", "capget");
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (prctl(PR_CAPBSET_READ, caps[i], 0, 0, 0) != 0 || (d[0].permitted & ~mask)) {
			fprintf(stderr, "degrade: capability %d is still held\n", caps[i]);
			exit(TH_EXIT_SYS);
		}
}

static void install_filter(bool no_landlock, bool no_userns, bool no_netns, bool no_mountns)
{
	uint32_t ns_flags = (no_userns ? DG_CLONE_NEWUSER : 0) | (no_netns ? DG_CLONE_NEWNET : 0) |
			    (no_mountns ? DG_CLONE_NEWNS : 0);
	bool ns = ns_flags != 0;
	uint32_t ll_create = no_landlock ? SYS_landlock_create_ruleset : DG_NONE;
	uint32_t ll_add = no_landlock ? SYS_landlock_add_rule : DG_NONE;
	uint32_t ll_restrict = no_landlock ? SYS_landlock_restrict_self : DG_NONE;
	uint32_t clone3 = ns ? SYS_clone3 : DG_NONE; /* its flags are out of reach */
	uint32_t unshare = ns ? SYS_unshare : DG_NONE;
	uint32_t clone = ns ? SYS_clone : DG_NONE;
	/* Jump offsets count the instructions skipped; indexes in the comments. */
	/* clang-format off */
	struct dg_sock_filter prog[] = {
	    /* 0 */ DG_STMT(DG_BPF_LD_W_ABS, DG_OFF_ARCH),
	    /* 1 */ DG_JUMP(DG_BPF_JEQ_K, DG_ARCH, 1, 0),
	    /* 2 */ DG_STMT(DG_BPF_RET_K, DG_RET_ALLOW), /* a foreign ABI: not ours to judge */
	    /* 3 */ DG_STMT(DG_BPF_LD_W_ABS, DG_OFF_NR),
	    /* 4 */ DG_JUMP(DG_BPF_JGE_K, DG_X32_BIT, 10, 0),   /* → 15 ENOSYS */
	    /* 5 */ DG_JUMP(DG_BPF_JEQ_K, ll_create, 9, 0),     /* → 15 ENOSYS */
	    /* 6 */ DG_JUMP(DG_BPF_JEQ_K, ll_add, 8, 0),	/* → 15 */
	    /* 7 */ DG_JUMP(DG_BPF_JEQ_K, ll_restrict, 7, 0),   /* → 15 */
	    /* 8 */ DG_JUMP(DG_BPF_JEQ_K, clone3, 6, 0),	/* → 15 */
	    /* 9 */ DG_JUMP(DG_BPF_JEQ_K, unshare, 1, 0),	/* → 11 flags */
	    /* 10 */ DG_JUMP(DG_BPF_JEQ_K, clone, 0, 3),	/* → 11 flags, else → 14 allow */
	    /* 11 */ DG_STMT(DG_BPF_LD_W_ABS, DG_OFF_ARG0_LO),
	    /* 12 */ DG_JUMP(DG_BPF_JSET_K, ns_flags, 0, 1), /* → 13 EPERM, else → 14 */
	    /* 13 */ DG_STMT(DG_BPF_RET_K, DG_RET_ERRNO(EPERM)),
	    /* 14 */ DG_STMT(DG_BPF_RET_K, DG_RET_ALLOW),
	    /* 15 */ DG_STMT(DG_BPF_RET_K, DG_RET_ERRNO(ENOSYS)),
	};
	/* clang-format on */
	struct dg_sock_fprog fprog = {(unsigned short)(sizeof(prog) / sizeof(prog[0])), prog};
	if (prctl(PR_SET_SECCOMP, DG_SECCOMP_MODE_FILTER, &fprog, 0, 0) < 0)
		th_die("degrade", "PR_SET_SECCOMP");
}

int main(int argc, char **argv)
{
	bool no_landlock = false, no_userns = false, no_netns = false, no_mountns = false;
	bool caps = false;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--no-landlock") == 0)
			no_landlock = true;
		else if (strcmp(argv[i], "--no-userns") == 0)
			no_userns = true;
		else if (strcmp(argv[i], "--no-netns") == 0)
			no_netns = true;
		else if (strcmp(argv[i], "--no-mountns") == 0)
			no_mountns = true;
		else if (strcmp(argv[i], "--drop-caps") == 0)
			caps = true;
		else
			usage();
	}
	if (i + 1 >= argc)
		usage();
	if (caps)
		drop_caps(); /* first: dropping from the bounding set needs CAP_SETPCAP, not NNP */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		th_die("degrade", "PR_SET_NO_NEW_PRIVS");
	if (no_landlock || no_userns || no_netns || no_mountns)
		install_filter(no_landlock, no_userns, no_netns, no_mountns);
	execv(argv[i + 1], argv + i + 1);
	th_die("degrade", argv[i + 1]);
}
