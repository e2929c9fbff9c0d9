/* oip_version: the one version of every model (see oip_version.h). */
#include "oip_version.h"

#include <string.h>

int oip_version_check(const char *model_name, const char *version, api_verdict *v)
{
    if (!version || strcmp(version, OIP_MODEL_VERSION) == 0)
        return 0;
    return api_fail(v, 404, "model '%.64s' has no version '%.64s' (its only version is '%s')",
                    model_name, version, OIP_MODEL_VERSION);
}
