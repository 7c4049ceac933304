/* holdfd SECONDS: sleep while holding every fd inherited across exec, then exit 0. The
 * "allowed binary" of the borrowed-identity attack (issue 17 item 1): named in the policy, it
 * does nothing with the sockets it holds.
 */
#include "common.h"

int main(int argc, char **argv)
{
	if (argc != 2)
		return TH_EXIT_USAGE;
	sleep((unsigned)atoi(argv[1]));
	return TH_EXIT_OK;
}
