"""Deadlines: a request whose X-Request-Timeout-Ms passes while it is queued
gets 504 and is never computed. Checked through the metrics: the items the
classifier computed (fastformerd_batch_size_sum) equal exactly the items of
the requests answered 200, so no expired item reached the engine, and every
504 is a "deadline" reject.

The one worker is kept busy by a second model ("slow", 4 x 512 tokens per
request; batches never mix models), so classifier requests queue."""
import random
import time

from stresslib import (CLASSIFIER_DIR, STRESS_SECONDS, Load, assert_close, metric_sum,
                       metrics, post, rejected, report)

BLOCK = {"inputs": [{"input_ids": [(i * 7 + k) % 59 + 1 for k in range(512)]} for i in range(4)]}
IDS = [[3, 4, 5], [7], [9, 10, 11, 12, 13], [20, 21]]


def test_expired_requests_get_504_and_are_never_computed(start_daemon, slow_classifier):
    d = start_daemon(models=[{"name": "slow", "path": slow_classifier, "max_batch_tokens": 2048},
                             {"name": "classifier", "path": CLASSIFIER_DIR}],
                     batching={"workers": 1, "max_queue": 4096})
    want = [post(d.port, "/v1/models/classifier/classify",
                 {"inputs": [{"input_ids": x}]}).json()["predictions"][0]["probabilities"]
            for x in IDS]
    m0 = metrics(d.port)
    items0 = metric_sum(m0, "fastformerd_batch_size_sum", model="classifier")

    # 1. Certain expiry: every classifier request waits behind the blocker
    # and has 20 ms.
    blockers = Load(d.port, lambda i, k: ("b", "POST", "/v1/models/slow/classify", BLOCK, None),
                    2).start()
    time.sleep(0.3)
    n_sure = sure_ok = 0
    while n_sure < 40:
        r = post(d.port, "/v1/models/classifier/classify", {"inputs": [{"input_ids": IDS[0]}]},
                 headers={"X-Request-Timeout-Ms": "20"})
        if r.status == 200:  # the worker happened to be between two blockers
            sure_ok += 1
            continue
        assert r.status == 504, r
        assert r.json()["error"]["type"] == "deadline_exceeded"
        n_sure += 1
    m = metrics(d.port)
    assert rejected(m, "deadline", "classifier") == n_sure

    # 2. Random deadlines around the queue time, many clients.
    rng = random.Random(3)
    plan = {}

    def make(i, k):
        n_items = 1 + (i + k) % 3
        ms = rng.choice([1, 5, 20, 50, 100, 200, 400, 1000, 60000])
        plan[(i, k)] = (n_items, ms)
        body = {"inputs": [{"input_ids": IDS[(i + k + j) % 4]} for j in range(n_items)]}
        return ((i + k) % 4, n_items), "POST", "/v1/models/classifier/classify", body, {
            "X-Request-Timeout-Ms": str(ms)}

    clients = Load(d.port, make, 6).start()
    time.sleep(STRESS_SECONDS)
    res = clients.stop()
    blockers.stop()
    assert d.alive(), d.log()[-3000:]

    ok_items = sure_ok
    n_ok = n_504 = 0
    for i, k, (first, n_items), r in res:
        if r.status == 200:
            n_ok += 1
            ok_items += n_items
            preds = r.json()["predictions"]
            assert len(preds) == n_items
            for j, p in enumerate(preds):
                assert_close(p["probabilities"], want[(first + j) % 4], 1e-5, 1e-6)
        else:
            assert r.status == 504, r
            n_504 += 1
            # 504 only once the deadline had passed
            assert r.latency * 1000 >= plan[(i, k)][1] * 0.9, (r.latency, plan[(i, k)])
    m = metrics(d.port)
    computed = metric_sum(m, "fastformerd_batch_size_sum", model="classifier") - items0
    report("deadlines", certain_504=n_sure, random_requests=len(res), answered_200=n_ok,
           answered_504=n_504, items_200=ok_items, items_computed=int(computed),
           deadline_rejects=int(rejected(m, "deadline", "classifier")),
           lucky_200_in_sure_phase=sure_ok)
    assert n_504 > 0 and n_ok > 0
    assert rejected(m, "deadline", "classifier") == n_sure + n_504
    # Nothing expired was computed: computed items are exactly the answered ones.
    assert computed == ok_items, (computed, ok_items)
