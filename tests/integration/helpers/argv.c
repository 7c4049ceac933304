/* argv ARG...: print each argument as "[ARG]" on its own line, to pin argv boundaries.
 *
 * argv[0] is printed as "argv0=..." first. Always exits 0.
 */
#include "common.h"

int main(int argc, char **argv)
{
	printf("argv0=%s\n", argc > 0 ? argv[0] : "");
	for (int i = 1; i < argc; i++)
		printf("[%s]\n", argv[i]);
	return TH_EXIT_OK;
}
