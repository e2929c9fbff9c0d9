"""Dynamic batching through the real daemon: concurrent clients get exactly
the results they get alone, and the batch-size histogram in /metrics shows
batches of more than one request.

One worker is kept busy by a large request on a second model name ("blocker",
the same weights; batches never mix models), so that single-input requests
to "classifier" queue up meanwhile and leave the queue together. Whether a
given round overlaps depends on scheduling, so rounds repeat until one did;
the results must be equal in every round."""
import re
import threading

from conftest import CLASSIFIER_DIR, assert_close, golden


def batch_histogram(daemon, model):
    text = daemon.get("/metrics").body.decode()
    le1 = re.search(r'fastformerd_batch_size_bucket\{model="%s",le="1"\} (\d+)' % model, text)
    count = re.search(r'fastformerd_batch_size_count\{model="%s"\} (\d+)' % model, text)
    return (int(le1.group(1)) if le1 else 0), (int(count.group(1)) if count else 0)


def test_concurrent_clients_get_unbatched_results_and_batches_form(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR},
                             {"name": "blocker", "path": CLASSIFIER_DIR}],
                     batching={"workers": 1, "max_batch_size": 32, "max_queue_delay_us": 5000})
    g = golden("classifier_f32")
    inputs = [ids for case in g["cases"] for ids in case["input_ids"]][:16]

    # Unbatched: one request at a time on an idle daemon, so each runs alone.
    alone = []
    for ids in inputs:
        r = d.post("/v1/models/classifier/classify", {"inputs": [{"input_ids": ids}]})
        assert r.status == 200, r
        alone.append(r.json()["predictions"][0])
    le1, count = batch_histogram(d, "classifier")
    assert count == len(inputs) and le1 == count  # every one of them ran in a batch of 1

    blocker_body = {"inputs": [{"input_ids": [(7 * i + k) % 59 + 1 for k in range(16)]}
                               for i in range(1024)]}
    batched_seen = False
    for round_no in range(30):
        results = [None] * len(inputs)
        start = threading.Barrier(len(inputs) + 1)

        def blocker():
            start.wait()
            r = d.post("/v1/models/blocker/classify", blocker_body)
            assert r.status == 200, r

        def client(i):
            start.wait()
            r = d.post("/v1/models/classifier/classify", {"inputs": [{"input_ids": inputs[i]}]})
            results[i] = (r.status, r.json())

        threads = [threading.Thread(target=blocker)]
        threads += [threading.Thread(target=client, args=(i,)) for i in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (status, out) in enumerate(results):
            assert status == 200, out
            p = out["predictions"][0]
            assert p["label_id"] == alone[i]["label_id"]
            # Batched rows run through the same kernels: equal up to float rounding.
            assert_close(p["probabilities"], alone[i]["probabilities"], 1e-5, 1e-6, f"input {i}")
        le1, count = batch_histogram(d, "classifier")
        if count > le1:
            batched_seen = True
            print(f"batches > 1 after {round_no + 1} round(s): {count - le1} of {count}")
            break
    assert batched_seen, "no batch of more than one request formed in 30 rounds"
    text = d.get("/metrics").body.decode()
    assert re.search(r'fastformerd_batch_tokens_count\{model="classifier"\} [1-9]', text)
    assert re.search(r'fastformerd_queue_duration_seconds_count\{model="classifier"\} [1-9]', text)


def test_items_of_one_request_are_batched(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                     batching={"workers": 1, "max_batch_size": 4})
    g = golden("classifier_f32")
    rows = [(ids, p) for case in g["cases"] for ids, p in zip(case["input_ids"],
                                                             case["probabilities"])]
    r = d.post("/v1/models/classifier/classify", {"inputs": [{"input_ids": x} for x, _ in rows]})
    assert r.status == 200, r
    for (_, want), got in zip(rows, r.json()["predictions"]):
        assert_close(got["probabilities"], want, 1e-4, 1e-5)
    le1, count = batch_histogram(d, "classifier")
    # Spread over batches of at most 4 items: at least ceil(n / 4) of them.
    assert count >= (len(rows) + 3) // 4 and count > le1
