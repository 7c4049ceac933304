/* fdcheck: list open file descriptors above 2 and say what 0, 1 and 2 are.
 *
 * Prints "fd0=KIND fd1=KIND fd2=KIND", then "leak fd=N -> TARGET" per extra fd, then
 * "leaked=N". Exit 0 iff nothing above 2 is open.
 */
#include "common.h"

#include <dirent.h>
#include <sys/stat.h>

static const char *fd_kind(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return "closed";
	if (S_ISFIFO(st.st_mode))
		return "fifo";
	if (S_ISSOCK(st.st_mode))
		return "socket";
	if (S_ISREG(st.st_mode))
		return "file";
	if (S_ISDIR(st.st_mode))
		return "dir";
	if (S_ISCHR(st.st_mode))
		return isatty(fd) ? "tty" : "chr";
	return "other";
}

int main(void)
{
	printf("fd0=%s fd1=%s fd2=%s\n", fd_kind(0), fd_kind(1), fd_kind(2));
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		th_die("fdcheck", "opendir /proc/self/fd");
	int self = dirfd(d);
	int leaked = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = th_uint_parse(e->d_name);
		if (fd <= 2 || fd == self)
			continue;
		char link[64];
		char target[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			n = 0;
		target[n] = '\0';
		printf("leak fd=%d -> %s\n", fd, target);
		leaked++;
	}
	closedir(d);
	printf("leaked=%d\n", leaked);
	return leaked == 0 ? TH_EXIT_OK : TH_EXIT_CHECK;
}
