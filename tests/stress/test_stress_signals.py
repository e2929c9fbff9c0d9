"""Signals under load.

SIGHUP every 100 ms while clients classify, embed, recommend and use OIP:
every request succeeds with the right answer, the reloads are counted, and
RSS after the run stays within a small bound of RSS after warm-up.

SIGTERM under load: every request the daemon accepted before the signal is
answered correctly; requests that arrive while draining get 503 with
Retry-After (reason "draining") until the listener closes, after which
connections are refused (both are counted separately); the exit code is 0
within drain_timeout_s."""
import os
import signal
import threading
import time

from stresslib import (CLASSIFIER_DIR, NEWSREC_DIR, STRESS_SECONDS, Load, assert_close,
                       error_message, golden, metric_sum, metrics, post, report, rss_kb)

SIGHUP_SECONDS = float(os.environ.get("STRESS_SIGHUP_SECONDS", str(max(STRESS_SECONDS, 10))))


def mixed_requests():
    """[(kind, path, body, check(json))] with answers from the PyTorch goldens."""
    gc = golden("classifier_f32")
    gn = golden("newsrec")
    case = next(c for c in gc["cases"] if c["name"] == "random_batch")
    out = []
    for ids, probs in zip(case["input_ids"][:4], case["probabilities"][:4]):
        out.append(("classify", "/v1/models/classifier/classify",
                    {"inputs": [{"input_ids": ids}]},
                    lambda j, p=probs: assert_close(j["predictions"][0]["probabilities"], p,
                                                    1e-4, 1e-5)))
        width = len(ids)
        out.append(("oip", "/v2/models/classifier/infer",
                    {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1, width],
                                 "data": ids}]},
                    lambda j, p=probs: assert_close(j["outputs"][0]["data"], p, 1e-4, 1e-5)))
    for ids, vec in list(zip(gn["news"]["input_ids"], gn["news"]["news_vectors"]))[:3]:
        out.append(("embed", "/v1/models/newsrec/embed", {"inputs": [{"input_ids": ids}]},
                    lambda j, v=vec: assert_close(j["embeddings"][0], v, 1e-4, 1e-5)))
    for u in gn["users"][:3]:
        out.append(("recommend", "/v1/models/newsrec/recommend",
                    {"history": [{"input_ids": x} for x in u["history"]],
                     "candidates": [{"input_ids": x} for x in u["candidates"]]},
                    lambda j, s=u["scores"]: assert_close(j["scores"], s, 1e-4, 1e-4)))
    return out


MODELS = [{"name": "classifier", "path": CLASSIFIER_DIR}, {"name": "newsrec", "path": NEWSREC_DIR}]


def test_sighup_every_100ms_under_load(start_daemon):
    d = start_daemon(models=MODELS)
    pid = d.proc.pid
    reqs = mixed_requests()

    def make(i, k):
        n = (i * 5 + k) % len(reqs)
        kind, path, body, _ = reqs[n]
        return n, "POST", path, body, None

    load = Load(d.port, make, 4).start()
    stop = threading.Event()
    sent = [0]
    samples = []  # (seconds since start, RSS kB)

    def hupper():
        t0 = time.monotonic()
        while not stop.is_set():
            d.proc.send_signal(signal.SIGHUP)
            sent[0] += 1
            samples.append((time.monotonic() - t0, rss_kb(pid)))
            time.sleep(0.1)

    h = threading.Thread(target=hupper)
    h.start()
    time.sleep(SIGHUP_SECONDS)
    stop.set()
    h.join()
    res = load.stop()
    time.sleep(0.5)  # the last reload finishes
    rss_end = rss_kb(pid)
    # glibc's per-thread arenas (a loader thread per reload) make RSS climb
    # for the first ~20 reloads and then swing +-10 MB around a plateau; a
    # leak keeps climbing. Compare the peaks of the two halves after warm-up
    # (the first 40%).
    post = [kb for t, kb in samples if t >= 0.4 * SIGHUP_SECONDS]
    first, second = post[:len(post) // 2], post[len(post) // 2:]
    rss_warm, rss_peak1, rss_peak2 = post[0], max(first), max(second)
    assert d.alive(), d.log()[-3000:]
    failed = [(reqs[n][0], r) for _, _, n, r in res if r.status != 200]
    assert not failed, failed[:5]
    for _, _, n, r in res:
        reqs[n][3](r.json())
    m = metrics(d.port)
    ok = metric_sum(m, "fastformerd_reloads_total", result="success")
    bad = metric_sum(m, "fastformerd_reloads_total", result="failure")
    ignored = d.log().count("SIGHUP ignored")
    report("sighup", seconds=SIGHUP_SECONDS, sighups_sent=sent[0], reloads_ok=int(ok),
           reloads_failed=int(bad), ignored_while_loading=ignored, requests=len(res),
           failed_requests=len(failed), rss_kb_start=samples[0][1], rss_kb_warm=rss_warm,
           rss_kb_peak_first_half=rss_peak1, rss_kb_peak_second_half=rss_peak2,
           rss_kb_end=rss_end)
    assert bad == 0
    # Each SIGHUP either reloads or meets a reload still running (ignored, logged).
    assert ok + ignored >= sent[0] * 0.9
    assert ok >= 3
    assert rss_peak2 - rss_peak1 < 16 * 1024, (rss_peak1, rss_peak2)


def test_sigterm_under_load_answers_accepted_and_exits_0(start_daemon, slow_classifier):
    d = start_daemon(models=[{"name": "slow", "path": slow_classifier, "max_batch_tokens": 2048},
                             *MODELS],
                     server={"drain_timeout_s": 20}, batching={"workers": 1, "max_queue": 4096})
    reqs = mixed_requests()
    slow_body = {"inputs": [{"input_ids": [(i * 7 + k) % 59 + 1 for k in range(512)]}
                            for i in range(4)]}
    slow_want = post(d.port, "/v1/models/slow/classify", slow_body).json()

    def make(i, k):
        if i < 2:  # keep the worker busy so that a queue builds up
            return -1, "POST", "/v1/models/slow/classify", slow_body, None
        n = (i * 5 + k) % len(reqs)
        return n, "POST", reqs[n][1], reqs[n][2], None

    load = Load(d.port, make, 10).start()
    time.sleep(max(2.0, STRESS_SECONDS / 4))
    t_sig = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=60)
    t_exit = time.monotonic() - t_sig
    res = load.stop()
    assert rc == 0, d.log()[-3000:]
    assert t_exit < 20, t_exit
    before = [(n, r) for _, _, n, r in res if r.sent_at < t_sig]
    after = [(n, r) for _, _, n, r in res if r.sent_at >= t_sig]
    drained = 0
    for n, r in before:
        # Sent before the signal: answered in full (a request still in the
        # kernel's accept queue may be told 503 draining, never lost).
        assert r.status in (200, 503), (n, r)
        if r.status == 200:
            if n < 0:
                assert r.json() == slow_want
            else:
                reqs[n][3](r.json())
            if r.sent_at + r.latency > t_sig:
                drained += 1
        else:
            assert error_message(r.json()) == "server is draining (shutting down)"
    draining_503 = refused = 0
    for n, r in after:
        if r.status == 503:
            assert r.headers["retry-after"] == "1"
            assert error_message(r.json()) == "server is draining (shutting down)"
            draining_503 += 1
        else:
            assert r.status in ("refused", "reset"), (n, r)
            refused += 1
    log = d.log()
    report("sigterm", requests_before=len(before), drained_in_flight=drained,
           answered_503_draining=draining_503, refused_after_close=refused,
           exit_seconds=round(t_exit, 2), exit_code=rc)
    assert drained > 0
    assert "exiting with status 0" in log and "drain timeout" not in log
