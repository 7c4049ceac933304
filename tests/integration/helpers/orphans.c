/* orphans N: make N orphans and check that our parent (the supervisor) adopts and reaps them.
 *
 * Each of N children forks a grandchild and exits at once, so the grandchild is re-parented to the
 * nearest subreaper or PID 1. The grandchild waits until that happened, reports its pid and its new
 * parent through a pipe, and exits. We then wait until every grandchild has vanished from the
 * process table, which only happens once someone reaped it. Never reaps the grandchildren itself.
 */
#include "common.h"

#include <poll.h>
#include <sys/wait.h>

enum {
	ORPHANS_MAX = 1000,
	ORPHANS_ADOPT_WAIT_MS = 3000, /* grandchild: how long to wait to be re-parented */
	ORPHANS_REAP_WAIT_MS = 5000,  /* how long the supervisor gets to reap them all */
};

struct orphan_report {
	pid_t pid;
	pid_t ppid;
};

static void grandchild_run(int wfd, pid_t old_parent)
{
	int waited = 0;
	while (getppid() == old_parent && waited < ORPHANS_ADOPT_WAIT_MS) {
		th_sleep_ms(1);
		waited++;
	}
	struct orphan_report r = {.pid = getpid(), .ppid = getppid()};
	(void)th_write_all(wfd, (const char *)&r, sizeof(r));
	_exit(0);
}

static int child_run(int wfd)
{
	pid_t me = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return TH_EXIT_SYS;
	if (pid == 0)
		grandchild_run(wfd, me);
	return 0;
}

static int reports_read(int rfd, struct orphan_report *reports, int n)
{
	char *buf = (char *)reports;
	size_t want = sizeof(*reports) * (size_t)n;
	size_t got = 0;
	while (got < want) {
		struct pollfd pfd = {.fd = rfd, .events = POLLIN};
		int rc = poll(&pfd, 1, ORPHANS_ADOPT_WAIT_MS + 2000);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break;
		ssize_t r = read(rfd, buf + got, want - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return (int)(got / sizeof(*reports));
}

static bool pid_is_gone(pid_t pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
}

int main(int argc, char **argv)
{
	int n = argc == 2 ? th_uint_parse(argv[1]) : -1;
	if (n < 1 || n > ORPHANS_MAX) {
		fprintf(stderr, "usage: orphans N (1..%d)\n", ORPHANS_MAX);
		return TH_EXIT_USAGE;
	}
	pid_t adopter = getppid();
	int p[2];
	if (pipe(p) != 0)
		th_die("orphans", "pipe");
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			th_die("orphans", "fork");
		if (pid == 0) {
			close(p[0]);
			_exit(child_run(p[1]));
		}
		int st = 0;
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				th_die("orphans", "waitpid");
	}
	close(p[1]);

	static struct orphan_report reports[ORPHANS_MAX];
	int got = reports_read(p[0], reports, n);
	int adopted = 0;
	for (int i = 0; i < got; i++)
		if (reports[i].ppid == adopter)
			adopted++;

	int reaped = 0;
	for (int waited = 0; waited <= ORPHANS_REAP_WAIT_MS; waited += 10) {
		reaped = 0;
		for (int i = 0; i < got; i++)
			if (pid_is_gone(reports[i].pid))
				reaped++;
		if (reaped == got)
			break;
		th_sleep_ms(10);
	}
	printf("orphans=%d reported=%d adopted_by_parent=%d reaped=%d parent=%d\n", n, got, adopted,
	       reaped, (int)adopter);
	return got == n && adopted == n && reaped == n ? TH_EXIT_OK : TH_EXIT_CHECK;
}
