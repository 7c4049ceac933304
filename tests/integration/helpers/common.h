/* Shared bits of the integration-test helpers: full writes, fatal exits, signal names.
 *
 * Helpers run inside the test rootfs (static musl, no libc on disk) as the supervisor's children.
 * They report on stdout and exit 0 (check holds), 1 (check failed), 100 (usage), 111 (system).
 * Nothing here may allocate or use stdio after a fork in a helper that forks.
 */
#ifndef TH_COMMON_H
#define TH_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum {
	TH_EXIT_OK = 0,
	TH_EXIT_CHECK = 1,
	TH_EXIT_USAGE = 100,
	TH_EXIT_SYS = 111,
};

static inline int th_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline int th_write_str(int fd, const char *s)
{
	return th_write_all(fd, s, strlen(s));
}

static inline void th_die(const char *prog, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(TH_EXIT_SYS);
}

static const struct {
	const char *name;
	int sig;
} th_signals[] = {
	{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
	{"TERM", SIGTERM}, {"PIPE", SIGPIPE}, {"CHLD", SIGCHLD}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH},
};

/* Returns the signal number for "TERM" or "SIGTERM", or 0 when unknown. */
static inline int th_sig_parse(const char *s)
{
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(th_signals) / sizeof(th_signals[0]); i++)
		if (strcasecmp(s, th_signals[i].name) == 0)
			return th_signals[i].sig;
	return 0;
}

static inline const char *th_sig_name(int sig)
{
	for (size_t i = 0; i < sizeof(th_signals) / sizeof(th_signals[0]); i++)
		if (th_signals[i].sig == sig)
			return th_signals[i].name;
	return "?";
}

/* Parses a non-negative decimal that fits in an int; returns -1 on anything else. */
static inline int th_uint_parse(const char *s)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 0x7fffffffL)
		return -1;
	return (int)v;
}

static inline void th_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

#endif
