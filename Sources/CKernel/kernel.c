// CKernel is a header module (include/CKernel.h); SwiftPM wants one source file.
#include "CKernel.h"
