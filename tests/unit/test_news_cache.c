/* test_news_cache: the LRU of news vectors keyed by token ids: hits copy the
 * vector out, the least recently used entry is evicted (a get refreshes an
 * entry), a put of an existing key replaces its vector, keys compare in full
 * (same length, different ids; empty keys), the counters, capacity 1, and
 * news_cache_bytes against the layout documented in news_cache.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "news_cache.h"

enum { DIM = 4, MAX_IDS = 8 };

static void vec_of(float v, float *out)
{
    for (int i = 0; i < DIM; i++)
        out[i] = v + (float)i * 0.25f;
}

static void expect_hit(news_cache *c, const int32_t *ids, int n, float v)
{
    float got[DIM], want[DIM];
    vec_of(v, want);
    assert_true(news_cache_get(c, ids, n, got));
    assert_memory_equal(got, want, sizeof got);
}

static void expect_miss(news_cache *c, const int32_t *ids, int n)
{
    float got[DIM];
    assert_false(news_cache_get(c, ids, n, got));
}

static void put(news_cache *c, const int32_t *ids, int n, float v)
{
    float vec[DIM];
    vec_of(v, vec);
    news_cache_put(c, ids, n, vec);
}

static void test_hit_and_miss(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(4, DIM, MAX_IDS);
    assert_non_null(c);
    int32_t a[] = {5, 6, 7}, b[] = {5, 6, 8}, a_short[] = {5, 6};
    expect_miss(c, a, 3);
    put(c, a, 3, 1.0f);
    expect_hit(c, a, 3, 1.0f);
    expect_miss(c, b, 3);       /* same length, one id differs */
    expect_miss(c, a_short, 2); /* a prefix is another key */
    news_cache_stats st;
    news_cache_stats_get(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 3);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.capacity, 4);
    assert_int_equal(st.evictions, 0);
    news_cache_free(c);
}

static void test_lru_eviction_order(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(3, DIM, MAX_IDS);
    int32_t k[5][2] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}};
    put(c, k[0], 2, 0.0f);
    put(c, k[1], 2, 1.0f);
    put(c, k[2], 2, 2.0f);
    /* touch k0: now k1 is the least recently used */
    expect_hit(c, k[0], 2, 0.0f);
    put(c, k[3], 2, 3.0f);
    expect_miss(c, k[1], 2);
    expect_hit(c, k[0], 2, 0.0f);
    expect_hit(c, k[2], 2, 2.0f);
    expect_hit(c, k[3], 2, 3.0f);
    /* order now (old -> new): k0, k2, k3; a put evicts k0 */
    put(c, k[4], 2, 4.0f);
    expect_miss(c, k[0], 2);
    expect_hit(c, k[4], 2, 4.0f);
    news_cache_stats st;
    news_cache_stats_get(c, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.entries, 3);
    news_cache_free(c);
}

/* Putting an existing key replaces the vector and refreshes it, without eviction. */
static void test_put_replaces(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(2, DIM, MAX_IDS);
    int32_t a[] = {9}, b[] = {10}, d[] = {11};
    put(c, a, 1, 1.0f);
    put(c, b, 1, 2.0f);
    put(c, a, 1, 7.0f); /* replace; a is now the most recent */
    expect_hit(c, a, 1, 7.0f);
    news_cache_stats st;
    news_cache_stats_get(c, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.evictions, 0);
    put(c, d, 1, 3.0f); /* evicts b, the least recent */
    expect_miss(c, b, 1);
    expect_hit(c, a, 1, 7.0f);
    expect_hit(c, d, 1, 3.0f);
    news_cache_free(c);
}

static void test_capacity_one_and_empty_key(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(1, DIM, MAX_IDS);
    int32_t a[] = {1, 2};
    put(c, NULL, 0, 5.0f); /* an empty title is a valid key */
    expect_hit(c, NULL, 0, 5.0f);
    put(c, a, 2, 6.0f);
    expect_miss(c, NULL, 0);
    expect_hit(c, a, 2, 6.0f);
    news_cache_free(c);
}

/* A key longer than the cache's max_ids can never be in it: a miss. */
static void test_key_too_long_misses(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(2, DIM, 2);
    int32_t a[] = {1, 2, 3};
    expect_miss(c, a, 3);
    news_cache_free(c);
}

/* Many keys through a small cache: every hit returns its own vector (the
 * chains stay consistent across evictions). */
static void test_churn(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(16, DIM, MAX_IDS);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 200; i++) {
            int32_t key[3] = {i, i * 7, round};
            put(c, key, 3, (float)(i * 10 + round));
            expect_hit(c, key, 3, (float)(i * 10 + round));
            if (i >= 16) {
                int32_t old[3] = {i - 16, (i - 16) * 7, round};
                expect_miss(c, old, 3);
            }
        }
    news_cache_stats st;
    news_cache_stats_get(c, &st);
    assert_int_equal(st.entries, 16);
    assert_int_equal(st.evictions, 600 - 16);
    news_cache_free(c);
}

/* news_cache_bytes, from news_cache.h's layout: per entry D floats, max_ids
 * (at least 1) 4-byte ids, four 4-byte fields (id count, chain, prev, next)
 * and an 8-byte hash; 4 bytes per bucket, the smallest power of two >= 2 x
 * capacity. The struct itself is private: it cancels in differences, and is
 * bounded here by 256. It is the size at full capacity, whatever the fill. */
static void test_bytes(void **state)
{
    (void)state;
    news_cache *c = news_cache_new(100, DIM, MAX_IDS);
    const size_t want = 100 * (DIM * 4 + MAX_IDS * 4 + 4 * 4 + 8) + 256 * 4;
    const size_t got = news_cache_bytes(c);
    assert_true(got >= want && got <= want + 256);
    const int32_t ids[3] = {1, 2, 3};
    for (int i = 0; i < 300; i++)
        put(c, ids, i % 4, (float)i);
    assert_int_equal(news_cache_bytes(c), got);

    /* keys of no ids still take one id per entry; 128 entries, 256 buckets */
    news_cache *d = news_cache_new(128, DIM, 0);
    const size_t want_d = 128 * (DIM * 4 + 1 * 4 + 4 * 4 + 8) + 256 * 4;
    assert_int_equal(got - news_cache_bytes(d), want - want_d);
    /* one entry: 2 buckets */
    news_cache *e = news_cache_new(1, DIM, MAX_IDS);
    const size_t want_e = 1 * (DIM * 4 + MAX_IDS * 4 + 4 * 4 + 8) + 2 * 4;
    assert_int_equal(got - news_cache_bytes(e), want - want_e);
    news_cache_free(c);
    news_cache_free(d);
    news_cache_free(e);
}

static void test_sizes_that_overflow(void **state)
{
    (void)state;
    assert_null(news_cache_new(SIZE_MAX / 2, DIM, MAX_IDS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),
        cmocka_unit_test(test_lru_eviction_order),
        cmocka_unit_test(test_put_replaces),
        cmocka_unit_test(test_capacity_one_and_empty_key),
        cmocka_unit_test(test_key_too_long_misses),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_sizes_that_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
