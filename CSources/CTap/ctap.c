// See include/ctap.h.
#include "ctap.h"
