/* test_safetensors: the safetensors parser on valid images and on every kind
 * of malformed header, plus exact F16/BF16 -> F32 conversion checked against
 * hand-computed bit patterns, and I8 tensors (one byte per element, their
 * integer values as F32). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "safetensors.h"
#include "st_builder.h"

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* Parses header+data and asserts failure with `want` in the message. */
static void expect_error_image(const unsigned char *img, size_t len, const char *want)
{
    char err[512] = "";
    safetensors *st = (safetensors *)1;
    assert_int_equal(safetensors_parse(img, len, &st, err, sizeof err), -1);
    assert_null(st);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not contain '%s'", err, want);
}

static void expect_error(const char *header, size_t data_len, const char *want)
{
    unsigned char *data = calloc(1, data_len + 1);
    size_t len;
    unsigned char *img = st_image(header, data, data_len, &len);
    expect_error_image(img, len, want);
    free(img);
    free(data);
}

static safetensors *parse_ok(const unsigned char *img, size_t len)
{
    char err[512] = "";
    safetensors *st = NULL;
    if (safetensors_parse(img, len, &st, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(st);
    return st;
}

/* ---- valid files ------------------------------------------------------------ */

static void test_valid_file(void **state)
{
    (void)state;
    float w[4] = {1.0f, -2.5f, 3.25f, 0.0f};
    unsigned char data[16 + 6 + 4];
    memcpy(data, w, 16);
    const uint16_t h[3] = {0x3c00, 0xc000, 0x3555}; /* F16 1, -2, 0.33325195 */
    for (int i = 0; i < 3; i++) {
        data[16 + 2 * i] = (unsigned char)h[i];
        data[17 + 2 * i] = (unsigned char)(h[i] >> 8);
    }
    data[22] = 0x80, data[23] = 0x3f; /* BF16 1.0 */
    data[24] = 0x49, data[25] = 0xc0; /* BF16 -3.140625 */
    size_t len;
    unsigned char *img =
        st_image("{\"__metadata__\":{\"format\":\"pt\"},"
                 "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                 "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                 "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22,26]},"
                 "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]}}   ",
                 data, sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    assert_int_equal(safetensors_count(st), 4);
    assert_null(safetensors_find(st, "__metadata__"));
    assert_null(safetensors_find(st, "missing"));
    assert_null(safetensors_at(st, 4));

    const safetensors_tensor *t = safetensors_find(st, "w");
    assert_non_null(t);
    assert_string_equal(t->name, "w");
    assert_int_equal(t->dtype, SAFETENSORS_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 2);
    assert_int_equal(t->n_elements, 4);
    assert_int_equal(t->n_bytes, 16);
    assert_ptr_equal(t->data, img + len - sizeof data);
    float out[4];
    safetensors_to_f32(t, out);
    assert_memory_equal(out, w, sizeof w);

    t = safetensors_find(st, "h");
    assert_int_equal(t->dtype, SAFETENSORS_F16);
    assert_int_equal(t->n_bytes, 6);
    safetensors_to_f32(t, out);
    assert_int_equal(f32_bits(out[0]), 0x3f800000u);
    assert_int_equal(f32_bits(out[1]), 0xc0000000u);
    assert_int_equal(f32_bits(out[2]), 0x3eaaa000u);

    t = safetensors_find(st, "b");
    assert_int_equal(t->dtype, SAFETENSORS_BF16);
    safetensors_to_f32(t, out);
    assert_int_equal(f32_bits(out[0]), 0x3f800000u);
    assert_true(out[1] == -3.140625f);

    t = safetensors_find(st, "empty");
    assert_int_equal(t->n_elements, 0);
    assert_int_equal(t->n_bytes, 0);

    /* safetensors_at is in data-offset order */
    assert_string_equal(safetensors_at(st, 0)->name, "w");
    assert_string_equal(safetensors_at(st, 3)->name, "b");
    assert_string_equal(safetensors_dtype_name(SAFETENSORS_BF16), "BF16");
    assert_string_equal(safetensors_dtype_name(SAFETENSORS_F16), "F16");
    assert_string_equal(safetensors_dtype_name(SAFETENSORS_F32), "F32");
    safetensors_free(st);
    free(img);
}

static void test_empty_header_object(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = st_image("{}", NULL, 0, &len);
    safetensors *st = parse_ok(img, len);
    assert_int_equal(safetensors_count(st), 0);
    assert_null(safetensors_find(st, "x"));
    safetensors_free(st);
    free(img);
}

static void test_gaps_and_scalar_allowed(void **state)
{
    (void)state;
    unsigned char data[12] = {0};
    size_t len;
    /* a 0-dim tensor is a scalar of one element; gaps between tensors are fine */
    unsigned char *img =
        st_image("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                 "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 data, sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    assert_int_equal(safetensors_find(st, "s")->n_elements, 1);
    assert_int_equal(safetensors_find(st, "s")->n_dims, 0);
    safetensors_free(st);
    free(img);
}

/* ---- conversion ------------------------------------------------------------- */

static void test_f16_bit_patterns(void **state)
{
    (void)state;
    static const struct {
        uint16_t in;
        uint32_t out;
    } cases[] = {
        {0x0000, 0x00000000}, /* +0 */
        {0x8000, 0x80000000}, /* -0 */
        {0x3c00, 0x3f800000}, /* 1 */
        {0xc000, 0xc0000000}, /* -2 */
        {0x7bff, 0x477fe000}, /* 65504, largest half */
        {0x0400, 0x38800000}, /* 2^-14, smallest normal */
        {0x0001, 0x33800000}, /* 2^-24, smallest subnormal */
        {0x8001, 0xb3800000}, /* -2^-24 */
        {0x0002, 0x34000000}, /* 2^-23 */
        {0x0003, 0x34400000}, /* 3 * 2^-24 */
        {0x03ff, 0x387fc000}, /* 1023 * 2^-24, largest subnormal */
        {0x0200, 0x38000000}, /* 2^-15 */
        {0x3555, 0x3eaaa000}, /* 0.333251953125 */
        {0x7c00, 0x7f800000}, /* +inf */
        {0xfc00, 0xff800000}, /* -inf */
        {0x7e00, 0x7fc00000}, /* quiet NaN */
        {0x7c01, 0x7f802000}, /* signalling NaN payload kept */
        {0xfe00, 0xffc00000}, /* negative NaN */
    };
    enum { N = sizeof cases / sizeof cases[0] };
    /* one leading byte so the F16 data is misaligned */
    unsigned char data[1 + 2 * N];
    data[0] = 0xaa;
    for (int i = 0; i < N; i++) {
        data[1 + 2 * i] = (unsigned char)cases[i].in;
        data[2 + 2 * i] = (unsigned char)(cases[i].in >> 8);
    }
    char header[128];
    snprintf(header, sizeof header,
             "{\"x\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[1,%d]}}", N, 1 + 2 * N);
    size_t len;
    unsigned char *img = st_image(header, data, sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    float out[N];
    safetensors_to_f32(safetensors_find(st, "x"), out);
    for (int i = 0; i < N; i++)
        if (f32_bits(out[i]) != cases[i].out)
            fail_msg("F16 0x%04x -> 0x%08x, expected 0x%08x", cases[i].in, f32_bits(out[i]),
                     cases[i].out);
    safetensors_free(st);
    free(img);
}

static void test_f16_all_finite_values_roundtrip(void **state)
{
    (void)state;
    /* Every finite half converts exactly: check against value = m * 2^(e-25) computed by ldexp. */
    unsigned char *data = malloc(2 * 65536);
    for (int i = 0; i < 65536; i++) {
        data[2 * i] = (unsigned char)i;
        data[2 * i + 1] = (unsigned char)(i >> 8);
    }
    size_t len;
    unsigned char *img =
        st_image("{\"x\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}",
                 data, 2 * 65536, &len);
    safetensors *st = parse_ok(img, len);
    float *out = malloc(65536 * sizeof(float));
    safetensors_to_f32(safetensors_find(st, "x"), out);
    for (int i = 0; i < 65536; i++) {
        int e = (i >> 10) & 31, m = i & 1023;
        if (e == 31)
            continue;
        double v = e == 0 ? m * 0x1p-24 : (1024 + m) * 0x1p-24 * (double)(1 << (e - 1));
        if (i & 0x8000)
            v = -v;
        if ((double)out[i] != v || ((i & 0x8000) != 0) != (f32_bits(out[i]) >> 31 != 0))
            fail_msg("F16 0x%04x -> %.10g, expected %.10g", i, (double)out[i], v);
    }
    free(out);
    safetensors_free(st);
    free(img);
    free(data);
}

static void test_bf16_bit_patterns(void **state)
{
    (void)state;
    static const uint16_t in[] = {0x3f80, 0xc049, 0x7f80, 0xff80, 0x0001, 0xffc1, 0x8000, 0x4b00};
    enum { N = sizeof in / sizeof in[0] };
    unsigned char data[3 + 2 * N] = {0};
    for (int i = 0; i < N; i++) {
        data[3 + 2 * i] = (unsigned char)in[i];
        data[4 + 2 * i] = (unsigned char)(in[i] >> 8);
    }
    char header[128];
    snprintf(header, sizeof header,
             "{\"x\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[3,%d]}}", N, 3 + 2 * N);
    size_t len;
    unsigned char *img = st_image(header, data, sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    float out[N];
    safetensors_to_f32(safetensors_find(st, "x"), out);
    for (int i = 0; i < N; i++)
        assert_int_equal(f32_bits(out[i]), (uint32_t)in[i] << 16);
    assert_true(out[1] == -3.140625f);
    assert_true(out[7] == 8388608.0f);
    safetensors_free(st);
    free(img);
}

/* I8: one byte per element at any offset; the sizes are checked like any
 * dtype's, and conversion gives the two's-complement integer values. */
static void test_i8_tensors(void **state)
{
    (void)state;
    const unsigned char data[1 + 6 + 4] = {0xaa, 0x00, 0x01, 0x7f, 0x80, 0x81,
                                           0xff, 0,    0,    0x80, 0x3f};
    size_t len;
    unsigned char *img =
        st_image("{\"q\":{\"dtype\":\"I8\",\"shape\":[2,3],\"data_offsets\":[1,7]},"
                 "\"q_scale\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[7,11]}}",
                 data, sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    const safetensors_tensor *t = safetensors_find(st, "q");
    assert_int_equal(t->dtype, SAFETENSORS_I8);
    assert_int_equal(t->n_elements, 6);
    assert_int_equal(t->n_bytes, 6);
    assert_ptr_equal(t->data, img + len - sizeof data + 1);
    float out[6];
    safetensors_to_f32(t, out);
    const float want[6] = {0, 1, 127, -128, -127, -1};
    assert_memory_equal(out, want, sizeof want);
    assert_string_equal(safetensors_dtype_name(SAFETENSORS_I8), "I8");
    assert_int_equal(safetensors_dtype_bytes(SAFETENSORS_I8), 1);
    assert_int_equal(safetensors_dtype_bytes(SAFETENSORS_F32), 4);
    assert_int_equal(safetensors_dtype_bytes(SAFETENSORS_BF16), 2);
    safetensors_free(st);
    free(img);

    /* sizes: one byte per element, and 2^63 elements overflow no product
     * check but do not fit the data area */
    expect_error("{\"q\":{\"dtype\":\"I8\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
                 "tensor 'q': data_offsets [0,24] do not match shape [2,3] of I8 (6 bytes)");
    expect_error("{\"q\":{\"dtype\":\"I8\",\"shape\":[2,3],\"data_offsets\":[0,6]}}", 5,
                 "tensor 'q': data_offsets [0,6] out of range (data area is 5 bytes)");
    expect_error(
        "{\"q\":{\"dtype\":\"I8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
        "tensor 'q': shape [4294967296,4294967296] overflows the address space");
    expect_error("{\"q\":{\"dtype\":\"I8\",\"shape\":[9223372036854775807],"
                 "\"data_offsets\":[0,1]}}",
                 1, "do not match shape [9223372036854775807] of I8");
}

static void test_f32_misaligned_conversion(void **state)
{
    (void)state;
    float v[3] = {1.5f, -0.125f, 1e-30f};
    unsigned char data[1 + sizeof v];
    memcpy(data + 1, v, sizeof v);
    size_t len;
    unsigned char *img =
        st_image("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[1,13]}}", data,
                 sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    float out[3];
    safetensors_to_f32(safetensors_find(st, "x"), out);
    assert_memory_equal(out, v, sizeof v);
    safetensors_free(st);
    free(img);
}

/* ---- malformed files -------------------------------------------------------- */

static void test_truncated_length(void **state)
{
    (void)state;
    unsigned char img[8] = {4, 0, 0, 0, 0, 0, 0, 0};
    expect_error_image(img, 0, "file is 0 bytes, too short for the 8-byte header length");
    expect_error_image(img, 7, "file is 7 bytes, too short");
}

static void test_header_past_eof(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = st_image(
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", 4, &len);
    /* truncate inside the header */
    expect_error_image(img, 20, "header length 54 exceeds the file (12 bytes after the length)");
    /* truncate inside the data: the header fits, the tensor does not */
    expect_error_image(img, len - 1,
                       "tensor 'x': data_offsets [0,4] out of range (data area is 3 bytes)");
    free(img);
}

static void test_header_length_zero_and_huge(void **state)
{
    (void)state;
    unsigned char img[16] = {0};
    memcpy(img + 8, "{}      ", 8);
    expect_error_image(img, sizeof img, "header length is 0");
    memset(img, 0xff, 8);
    expect_error_image(img, sizeof img, "header length 18446744073709551615 exceeds the file");
}

static void test_header_over_limit(void **state)
{
    (void)state;
    /* 100 MB + 1 header inside a file that really is that long */
    size_t n = 100000001;
    unsigned char *img = calloc(1, 8 + n);
    assert_non_null(img);
    for (int i = 0; i < 8; i++)
        img[i] = (unsigned char)((uint64_t)n >> (8 * i));
    expect_error_image(img, 8 + n, "header length 100000001 exceeds the limit of 100000000 bytes");
    free(img);
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_error("{\"x\":", 0, "header is not valid JSON");
    expect_error("{\"x\":{}} trailing", 0, "header is not valid JSON");
    expect_error("{\"\xff\":{}}", 0, "header is not valid JSON"); /* invalid UTF-8 */
    expect_error("[1,2]", 0, "header must be a JSON object");
    expect_error("[]", 0, "header must be a JSON object");
}

static void test_duplicate_names(void **state)
{
    (void)state;
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, "duplicate tensor name");
}

static void test_bad_entries(void **state)
{
    (void)state;
    expect_error("{\"x\":[1]}", 0, "tensor 'x': entry must be an object");
    expect_error("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "tensor 'x': missing 'dtype'");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                 "tensor 'x': missing 'shape'");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                 "tensor 'x': missing 'data_offsets'");
    expect_error("{\"x\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "tensor 'x': 'dtype' must be a string");
}

static void test_unknown_dtype(void **state)
{
    (void)state;
    expect_error("{\"emb\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'emb': unsupported dtype 'I64' (expected F32, F16, BF16 or I8)");
    expect_error("{\"emb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                 "tensor 'emb': unsupported dtype 'U8'");
    expect_error("{\"emb\":{\"dtype\":\"i8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                 "tensor 'emb': unsupported dtype 'i8'");
    expect_error("{\"emb\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "tensor 'emb': unsupported dtype 'f32'");
}

static void test_bad_shapes(void **state)
{
    (void)state;
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16,
                 "tensor 'x': 'shape' must be an array");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 16,
                 "tensor 'x': shape dim 1 must be a non-negative integer");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'x': shape dim 0 must be a non-negative integer");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'x': shape dim 0 must be a non-negative integer");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                 4, "tensor 'x': shape has 9 dims, at most 8 are supported");
    /* 2^32 * 2^32 elements overflow size_t */
    expect_error(
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
        "tensor 'x': shape [4294967296,4294967296] overflows the address space");
    /* 2^62 elements fit, 2^62 * 4 bytes do not */
    expect_error(
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0,
        "overflows the address space");
    /* a zero dim does not excuse an overflowing product of the others */
    expect_error(
        "{\"x\":{\"dtype\":\"F16\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0,
        "overflows the address space");
    /* larger than any JSON integer jansson accepts */
    expect_error(
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,0]}}", 0,
        "header is not valid JSON");
}

static void test_bad_offsets(void **state)
{
    (void)state;
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                 "tensor 'x': 'data_offsets' must be [begin, end] of non-negative integers");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                 "'data_offsets' must be [begin, end]");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                 "'data_offsets' must be [begin, end]");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"}}", 4,
                 "'data_offsets' must be [begin, end]");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                 "tensor 'x': data_offsets [8,4] end before begin");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 7,
                 "tensor 'x': data_offsets [4,8] out of range (data area is 7 bytes)");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9223372036854775800,"
                 "9223372036854775804]}}",
                 8, "out of range");
    expect_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,12]}}", 64,
                 "tensor 'x': data_offsets [0,12] do not match shape [4,4] of F32 (64 bytes)");
    expect_error("{\"x\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 64,
                 "tensor 'x': data_offsets [0,12] do not match shape [3] of BF16 (6 bytes)");
}

static void test_overlaps(void **state)
{
    (void)state;
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "tensor 'b': data_offsets [4,12] overlap tensor 'a' [0,8]");
    /* same range twice, listed in the other order */
    expect_error("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
                 8, "overlap tensor");
    /* contained in a longer tensor that ends later than the one in between */
    expect_error("{\"long\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"mid\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                 "\"late\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                 16, "overlap tensor 'long'");
}

static void test_zero_size_tensor_never_overlaps(void **state)
{
    (void)state;
    unsigned char data[8] = {0};
    size_t len;
    unsigned char *img = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                  "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                                  data, sizeof data, &len);
    safetensors *st = parse_ok(img, len);
    assert_int_equal(safetensors_count(st), 2);
    safetensors_free(st);
    free(img);
}

static void test_bad_metadata(void **state)
{
    (void)state;
    expect_error("{\"__metadata__\":[]}", 0, "'__metadata__' must be an object of strings");
    expect_error("{\"__metadata__\":{\"k\":1}}", 0, "'__metadata__' value of 'k' must be a string");
}

static void test_error_buffer_may_be_null(void **state)
{
    (void)state;
    safetensors *st;
    unsigned char img[4] = {0};
    assert_int_equal(safetensors_parse(img, sizeof img, &st, NULL, 0), -1);
    char small[8];
    assert_int_equal(safetensors_parse(img, sizeof img, &st, small, sizeof small), -1);
    assert_int_equal(strlen(small), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_empty_header_object),
        cmocka_unit_test(test_gaps_and_scalar_allowed),
        cmocka_unit_test(test_f16_bit_patterns),
        cmocka_unit_test(test_f16_all_finite_values_roundtrip),
        cmocka_unit_test(test_bf16_bit_patterns),
        cmocka_unit_test(test_i8_tensors),
        cmocka_unit_test(test_f32_misaligned_conversion),
        cmocka_unit_test(test_truncated_length),
        cmocka_unit_test(test_header_past_eof),
        cmocka_unit_test(test_header_length_zero_and_huge),
        cmocka_unit_test(test_header_over_limit),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_bad_offsets),
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_zero_size_tensor_never_overlaps),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_error_buffer_may_be_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
