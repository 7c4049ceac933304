/* ctty: report whether we run as a session leader with a controlling terminal in the foreground.
 *
 * Checks open("/dev/tty"), getsid(0) == getpid(), tcgetpgrp(0) == getpgrp() and isatty on 0, 1, 2.
 * Prints one line "ctty=yes|no ..." with each fact; exit 0 when all hold, 1 otherwise.
 */
#include "common.h"

#include <fcntl.h>

int main(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	int tty_errno = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	bool has_tty = fd >= 0;
	bool leader = getsid(0) == getpid();
	pid_t fg = tcgetpgrp(0);
	bool foreground = fg >= 0 && fg == getpgrp();
	bool atty = isatty(0) && isatty(1) && isatty(2);
	bool ok = has_tty && leader && foreground && atty;
	printf("ctty=%s dev_tty=%s sid_leader=%s foreground=%s isatty012=%s sid=%d pid=%d pgrp=%d "
	       "tcpgrp=%d\n",
	       ok ? "yes" : "no", has_tty ? "ok" : strerror(tty_errno), leader ? "yes" : "no",
	       foreground ? "yes" : "no", atty ? "yes" : "no", (int)getsid(0), (int)getpid(),
	       (int)getpgrp(), (int)fg);
	return ok ? TH_EXIT_OK : TH_EXIT_CHECK;
}
