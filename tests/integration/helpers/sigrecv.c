/* sigrecv [-o FILE] [-d MS] SIG...: wait for one of the named signals and report it.
 *
 * Blocks the signals, writes "ready", then waits with sigwaitinfo. On arrival writes
 * "got SIG from=PID", sleeps MS milliseconds (a slow shutdown), writes "done" and exits 100+signo.
 * Output goes to stdout, or is appended to FILE with -o (for daemons whose stdout nobody reads).
 */
#include "common.h"

#include <fcntl.h>

static void report(int fd, const char *line)
{
	if (th_write_str(fd, line) != 0)
		th_die("sigrecv", "write");
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	int delay_ms = 0;
	int opt;
	while ((opt = getopt(argc, argv, "+o:d:")) != -1) {
		if (opt == 'o') {
			out = optarg;
		} else if (opt == 'd' && (delay_ms = th_uint_parse(optarg)) >= 0) {
			continue;
		} else {
			fprintf(stderr, "usage: sigrecv [-o FILE] [-d MS] SIG...\n");
			return TH_EXIT_USAGE;
		}
	}
	sigset_t set;
	sigemptyset(&set);
	for (int i = optind; i < argc; i++) {
		int sig = th_sig_parse(argv[i]);
		if (sig == 0) {
			fprintf(stderr, "sigrecv: unknown signal %s\n", argv[i]);
			return TH_EXIT_USAGE;
		}
		sigaddset(&set, sig);
	}
	if (optind == argc) {
		fprintf(stderr, "usage: sigrecv [-o FILE] [-d MS] SIG...\n");
		return TH_EXIT_USAGE;
	}
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		th_die("sigrecv", "sigprocmask");
	int fd = 1;
	if (out != NULL) {
		fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			th_die("sigrecv", out);
	}
	report(fd, "ready\n");
	siginfo_t si;
	int sig;
	while ((sig = sigwaitinfo(&set, &si)) < 0)
		if (errno != EINTR)
			th_die("sigrecv", "sigwaitinfo");
	char line[96];
	snprintf(line, sizeof(line), "got %s from=%d\n", th_sig_name(sig), (int)si.si_pid);
	report(fd, line);
	th_sleep_ms(delay_ms);
	report(fd, "done\n");
	return 100 + sig;
}
