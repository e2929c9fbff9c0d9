/* openapi: embeds server/openapi.json with the assembler's .incbin, so the
 * document lives in exactly one place. The path is relative to the directory
 * make runs in (the repository root); the Makefile makes the object depend on
 * the JSON file, since -MMD cannot see .incbin. */
#include <stdint.h>

#include "openapi.h"

#if SIZE_MAX == UINT64_MAX
#define OPENAPI_SIZE_DIRECTIVE ".8byte"
#define OPENAPI_SIZE_ALIGN "8"
#else
#define OPENAPI_SIZE_DIRECTIVE ".4byte"
#define OPENAPI_SIZE_ALIGN "4"
#endif

__asm__(".pushsection .rodata\n"
        ".global openapi_json\n"
        ".type openapi_json, %object\n"
        ".balign 16\n"
        "openapi_json:\n"
        ".incbin \"server/openapi.json\"\n"
        "openapi_json_end:\n"
        ".byte 0\n"
        ".size openapi_json, . - openapi_json\n"
        ".global openapi_json_bytes\n"
        ".type openapi_json_bytes, %object\n"
        ".balign " OPENAPI_SIZE_ALIGN "\n"
        "openapi_json_bytes:\n" OPENAPI_SIZE_DIRECTIVE " openapi_json_end - openapi_json\n"
        ".size openapi_json_bytes, " OPENAPI_SIZE_ALIGN "\n"
        ".popsection\n");
