/* Start-up benchmark: time from exec of an init (our supervisor, tini, or nothing) to the
 * moment the agent's main() runs, plus wall time to exit and peak RSS, over N runs each.
 *
 * Usage: startup RUNS STAMP LABEL INIT_ARGV... --   (an empty INIT_ARGV runs STAMP bare)
 * The agent is STAMP, a static program printing its CLOCK_MONOTONIC time on stdout. Runs of the
 * different inits are interleaved so machine noise hits all of them alike. Prints one line per
 * label: median and p95 in microseconds, and the peak RSS in KiB. Never a pass/fail verdict.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_INITS 6

struct init {
	const char *label;
	char *argv[16];
	int argc;
	double *start_us, *total_us;
	long max_rss_kb;
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int run_once(struct init *in, const char *stamp, int i)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	char *argv[20];
	int n = 0;
	for (int k = 0; k < in->argc; k++)
		argv[n++] = in->argv[k];
	argv[n++] = (char *)stamp;
	argv[n] = NULL;
	double t0 = now_us();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	char buf[64] = {0};
	ssize_t len = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    len <= 0)
		return -1;
	double t1 = now_us();
	in->start_us[i] = strtod(buf, NULL) / 1e3 - t0;
	in->total_us[i] = t1 - t0;
	if (ru.ru_maxrss > in->max_rss_kb)
		in->max_rss_kb = ru.ru_maxrss;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, int n, double q)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	int k = (int)(q * (n - 1) + 0.5);
	return v[k];
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: startup RUNS STAMP LABEL [INIT ARGV...] -- [LABEL ...] --\n");
		return 2;
	}
	int runs = atoi(argv[1]);
	const char *stamp = argv[2];
	struct init inits[MAX_INITS];
	int ninit = 0;
	for (int a = 3; a < argc && ninit < MAX_INITS;) {
		struct init *in = &inits[ninit++];
		memset(in, 0, sizeof(*in));
		in->label = argv[a++];
		while (a < argc && strcmp(argv[a], "--") != 0 && in->argc < 15)
			in->argv[in->argc++] = argv[a++];
		a++; /* skip -- */
		in->start_us = calloc((size_t)runs, sizeof(double));
		in->total_us = calloc((size_t)runs, sizeof(double));
		if (!in->start_us || !in->total_us)
			return 1;
	}
	for (int i = 0; i < runs; i++) {
		for (int k = 0; k < ninit; k++) {
			if (run_once(&inits[k], stamp, i) < 0) {
				fprintf(stderr, "run %d of %s failed\n", i, inits[k].label);
				return 1;
			}
		}
	}
	for (int k = 0; k < ninit; k++) {
		struct init *in = &inits[k];
		printf("%s start_median_us=%.0f start_p95_us=%.0f total_median_us=%.0f "
		       "total_p95_us=%.0f max_rss_kb=%ld\n",
		       in->label, pct(in->start_us, runs, 0.5), pct(in->start_us, runs, 0.95),
		       pct(in->total_us, runs, 0.5), pct(in->total_us, runs, 0.95), in->max_rss_kb);
	}
	return 0;
}
