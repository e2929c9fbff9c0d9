/* oip_version: model versions in the Open Inference Protocol. A model has
 * one version, "1" (a reload replaces it in place); the versioned routes
 * /v2/models/{name}/versions/{version}[/ready|/infer] serve that one and
 * answer 404 for any other. Pure; any thread. */
#ifndef FF_OIP_VERSION_H
#define FF_OIP_VERSION_H

#include "api_fields.h"

/* Every model's only version. */
#define OIP_MODEL_VERSION "1"

/* 0 when `version` (the path's {version}, NULL on an unversioned route) is
 * served, else 404: "model 'm' has no version '2' (its only version is '1')". */
int oip_version_check(const char *model_name, const char *version, api_verdict *v);

#endif
