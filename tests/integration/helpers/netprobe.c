/* netprobe tcp|udp HOST PORT: try one direct connection (TCP connect, or a UDP datagram) and
 * print `result=<ok|ERRNO> ms=<elapsed>`. Used to show the agent's network namespace reaches
 * nothing but its loopback: every other destination must fail, and fail fast.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static const char *ename(int e)
{
	switch (e) {
	case ENETUNREACH:
		return "ENETUNREACH";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EACCES:
		return "EACCES";
	case EPERM:
		return "EPERM";
	default:
		return "EOTHER";
	}
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "udp") != 0))
		return TH_EXIT_USAGE;
	bool tcp = strcmp(argv[1], "tcp") == 0;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		return TH_EXIT_USAGE;
	int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0)
		return TH_EXIT_SYS;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = tcp ? connect(fd, (struct sockaddr *)&sa, sizeof(sa))
		    : (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("result=%s ms=%ld\n", r < 0 ? ename(e) : "ok", ms);
	return r < 0 ? TH_EXIT_CHECK : TH_EXIT_OK;
}
