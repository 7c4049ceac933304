/* zombies [PPID]: count processes in state Z (optionally only children of PPID) in /proc.
 *
 * Prints "zombies=N" and one "zombie pid=P ppid=Q comm=C" line for each; exit 0 iff N is 0.
 */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>

/* Reads /proc/PID/stat; returns true and fills state/ppid/comm when it parsed. */
static bool stat_read(int pid, char *state, int *ppid, char *comm, size_t comm_len)
{
	char path[64];
	char buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *open_paren = strchr(buf, '(');
	char *close_paren = strrchr(buf, ')');
	if (open_paren == NULL || close_paren == NULL || close_paren[1] == '\0')
		return false;
	size_t len = (size_t)(close_paren - open_paren - 1);
	if (len >= comm_len)
		len = comm_len - 1;
	memcpy(comm, open_paren + 1, len);
	comm[len] = '\0';
	return sscanf(close_paren + 2, "%c %d", state, ppid) == 2;
}

int main(int argc, char **argv)
{
	int want_ppid = -1;
	if (argc == 2) {
		want_ppid = th_uint_parse(argv[1]);
		if (want_ppid < 0) {
			fprintf(stderr, "usage: zombies [PPID]\n");
			return TH_EXIT_USAGE;
		}
	} else if (argc > 2) {
		fprintf(stderr, "usage: zombies [PPID]\n");
		return TH_EXIT_USAGE;
	}
	DIR *d = opendir("/proc");
	if (d == NULL)
		th_die("zombies", "opendir /proc");
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int pid = th_uint_parse(e->d_name);
		if (pid <= 0)
			continue;
		char state = '?';
		int ppid = -1;
		char comm[64];
		if (!stat_read(pid, &state, &ppid, comm, sizeof(comm)))
			continue;
		if (state != 'Z' || (want_ppid >= 0 && ppid != want_ppid))
			continue;
		count++;
		printf("zombie pid=%d ppid=%d comm=%s\n", pid, ppid, comm);
	}
	closedir(d);
	printf("zombies=%d\n", count);
	return count == 0 ? TH_EXIT_OK : TH_EXIT_CHECK;
}
