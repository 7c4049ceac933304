/* pipegrow MS1 MS2: copy stdin to stdout, after growing the stdin pipe while nothing reads it.
 *
 * Sleeps MS1 milliseconds (the writer fills the pipe), grows the pipe to 1 MiB (F_SETPIPE_SZ), so
 * the writer's next writes are taken whole, sleeps MS2 more, then copies stdin to stdout until EOF.
 */
#include "common.h"

#include <fcntl.h>

int main(int argc, char **argv)
{
	int ms1 = argc == 3 ? th_uint_parse(argv[1]) : -1;
	int ms2 = argc == 3 ? th_uint_parse(argv[2]) : -1;
	if (ms1 < 0 || ms2 < 0)
		return TH_EXIT_USAGE;
	th_sleep_ms(ms1);
	if (fcntl(0, F_SETPIPE_SZ, 1 << 20) < 0)
		th_die("pipegrow", "F_SETPIPE_SZ");
	th_sleep_ms(ms2);
	static char buf[65536];
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			th_die("pipegrow", "read");
		if (n == 0)
			return TH_EXIT_OK;
		if (th_write_all(1, buf, (size_t)n) != 0)
			th_die("pipegrow", "write");
	}
}
