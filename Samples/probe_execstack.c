// The process-state probe linked with -z execstack: PT_GNU_STACK asks for PF_X, so [stack] must be rwx.
#include "probe.c"
