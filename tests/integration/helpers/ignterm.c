/* ignterm [FILE]: ignore SIGTERM, say "ready" (on stdout or appended to FILE) and sleep forever.
 *
 * Stands for a main process or daemon that will not stop on SIGTERM and must be SIGKILLed after the
 * grace period. Never exits on its own.
 */
#include "common.h"

#include <fcntl.h>

int main(int argc, char **argv)
{
	if (argc > 2) {
		fprintf(stderr, "usage: ignterm [FILE]\n");
		return TH_EXIT_USAGE;
	}
	if (signal(SIGTERM, SIG_IGN) == SIG_ERR)
		th_die("ignterm", "signal");
	int fd = 1;
	if (argc == 2) {
		fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			th_die("ignterm", argv[1]);
	}
	if (th_write_str(fd, "ready\n") != 0)
		th_die("ignterm", "write");
	for (;;)
		pause();
}
