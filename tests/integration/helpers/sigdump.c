/* sigdump: print SigBlk, SigIgn and SigCgt from /proc/self/status.
 *
 * Used to check that the supervisor resets the signal mask and ignored dispositions before exec.
 * Exit 0 when SigBlk and SigIgn are both all zeros, 1 otherwise.
 */
#include "common.h"

int main(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (f == NULL)
		th_die("sigdump", "open /proc/self/status");
	char line[256];
	bool clean = true;
	int seen = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SigBlk:", 7) != 0 && strncmp(line, "SigIgn:", 7) != 0 &&
		    strncmp(line, "SigCgt:", 7) != 0)
			continue;
		fputs(line, stdout);
		if (strncmp(line, "SigCgt:", 7) == 0)
			continue;
		seen++;
		unsigned long long mask = strtoull(line + 7, NULL, 16);
		if (mask != 0)
			clean = false;
	}
	fclose(f);
	return seen == 2 && clean ? TH_EXIT_OK : TH_EXIT_CHECK;
}
