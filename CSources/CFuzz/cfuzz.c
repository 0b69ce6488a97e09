// Nothing to define: LLVMFuzzerRunDriver comes from libFuzzer (see include/cfuzz.h). SwiftPM
// needs one source file per C target.
#include "cfuzz.h"
