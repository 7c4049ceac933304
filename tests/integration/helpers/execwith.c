/* execwith [-i SIG]... [-b SIG]... [-f FD]... -- PROG ARG...: exec PROG in a hostile start state.
 *
 * -i ignores SIG, -b blocks SIG, -f leaves /etc/passwd open on FD without O_CLOEXEC. Used in front
 * of the supervisor to check that none of this reaches the main process. Exec is direct (no PATH).
 */
#include "common.h"

#include <fcntl.h>

static int sig_arg(const char *s)
{
	int sig = th_sig_parse(s);
	if (sig == 0) {
		fprintf(stderr, "execwith: unknown signal %s\n", s);
		exit(TH_EXIT_USAGE);
	}
	return sig;
}

int main(int argc, char **argv)
{
	sigset_t block;
	sigemptyset(&block);
	int opt;
	while ((opt = getopt(argc, argv, "+i:b:f:")) != -1) {
		if (opt == 'i') {
			if (signal(sig_arg(optarg), SIG_IGN) == SIG_ERR)
				th_die("execwith", "signal");
		} else if (opt == 'b') {
			sigaddset(&block, sig_arg(optarg));
		} else if (opt == 'f') {
			int want = th_uint_parse(optarg);
			if (want < 3) {
				fprintf(stderr, "execwith: -f needs an fd above 2\n");
				return TH_EXIT_USAGE;
			}
			int fd = open("/etc/passwd", O_RDONLY);
			if (fd < 0)
				th_die("execwith", "open /etc/passwd");
			if (fd != want) {
				if (dup2(fd, want) < 0)
					th_die("execwith", "dup2");
				close(fd);
			}
		} else {
			fprintf(stderr, "usage: execwith [-i SIG]... [-b SIG]... [-f FD]... -- PROG ARG...\n");
			return TH_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: execwith [-i SIG]... [-b SIG]... [-f FD]... -- PROG ARG...\n");
		return TH_EXIT_USAGE;
	}
	if (sigprocmask(SIG_BLOCK, &block, NULL) != 0)
		th_die("execwith", "sigprocmask");
	execv(argv[optind], argv + optind);
	th_die("execwith", argv[optind]);
}
