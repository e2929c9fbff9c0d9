"""Soak: mixed traffic (classify, embed, recommend with ids, news ids and
text, OIP, PUT news, bad requests, clients that vanish, a SIGHUP now and
then) against the daemon built with sanitizers, run under valgrind, and the
release build. At the end: no sanitizer or valgrind error, no leak reported
at exit, exit code 0, file descriptors back to the warm-up baseline, and RSS
flat after warm-up (measured on the release build: under ASan RSS also
holds the quarantine of freed memory, which fills up slowly).

  asan:      build/asan/fastformerd (ASan + UBSan + LSan; `make VARIANT=asan
             build/asan/fastformerd`), STRESS_SOAK_SECONDS (default 45).
  valgrind:  build/fastformerd under memcheck, STRESS_VALGRIND_SECONDS
             (default 15; 0 skips it).
  release:   build/fastformerd, RSS and fds, STRESS_SOAK_RELEASE_SECONDS
             (default 30).
Each variant is skipped, saying why, when its binary or tool is missing."""
import os
import random
import re
import shutil
import signal
import threading
import time

import pytest

from stresslib import (CLASSIFIER_DIR, MIND_NEWS, NEWSREC_DIR, ROOT, SOAK_SECONDS, Load,
                       assert_close, fd_count, fd_targets, golden, http_bytes, itc, metrics,
                       percentile, raw_send, report, rss_kb, wait_fds)

ASAN_DAEMON = os.environ.get("FASTFORMERD_ASAN", os.path.join(ROOT, "build", "asan",
                                                                "fastformerd"))
VALGRIND_SECONDS = float(os.environ.get("STRESS_VALGRIND_SECONDS", "15"))
RELEASE_SECONDS = float(os.environ.get("STRESS_SOAK_RELEASE_SECONDS", "30"))
MODELS = [{"name": "classifier", "path": CLASSIFIER_DIR},
          {"name": "newsrec", "path": NEWSREC_DIR},
          {"name": "mind", "path": NEWSREC_DIR, "news_catalog": MIND_NEWS}]
C = "/v1/models/classifier/classify"


def state_dir(tmp_path):
    """The recommender 'mind' keeps its news catalog in a SQLite store: its
    PUTs commit under the sanitizers and valgrind too."""
    return {"state_dir": str(tmp_path / "state")}


def mind_ids():
    with open(MIND_NEWS) as f:
        return [line.split("\t")[0] for line in f if line.strip()][:20]


def traffic():
    """[(kind, method, path, body, expected status(es), check(json) or None)]."""
    gc, gn = golden("classifier_f32"), golden("newsrec")
    case = next(c for c in gc["cases"] if c["name"] == "random_batch")
    out = []
    for ids, probs in zip(case["input_ids"], case["probabilities"]):
        out.append(("classify", "POST", C, {"inputs": [{"input_ids": ids}]}, 200,
                    lambda j, p=probs: assert_close(j["predictions"][0]["probabilities"], p,
                                                    1e-4, 1e-5)))
        out.append(("oip", "POST", "/v2/models/classifier/infer",
                    {"id": "x", "inputs": [{"name": "input_ids", "datatype": "INT64",
                                            "shape": [1, len(ids)], "data": ids}]}, 200,
                    lambda j, p=probs: assert_close(j["outputs"][0]["data"], p, 1e-4, 1e-5)))
    out.append(("classify_text", "POST", C, {"inputs": ["the oil market", "a win"] * 4}, 200,
                lambda j: len(j["predictions"]) == 8 or pytest.fail("8 predictions")))
    out.append(("oip_text", "POST", "/v2/models/classifier/infer",
                {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1],
                             "data": ["oil", "bank deal"]}]}, 200, None))
    for ids, vec in list(zip(gn["news"]["input_ids"], gn["news"]["news_vectors"]))[:4]:
        out.append(("embed", "POST", "/v1/models/newsrec/embed",
                    {"inputs": [{"input_ids": ids}]}, 200,
                    lambda j, v=vec: assert_close(j["embeddings"][0], v, 1e-4, 1e-5)))
    for u in gn["users"]:
        out.append(("recommend", "POST", "/v1/models/newsrec/recommend",
                    {"history": [{"input_ids": x} for x in u["history"]],
                     "candidates": [{"input_ids": x} for x in u["candidates"]]}, 200,
                    lambda j, s=u["scores"]: assert_close(j["scores"], s, 1e-4, 1e-4)))
    ids = mind_ids()
    out.append(("recommend_news_ids", "POST", "/v1/models/mind/recommend",
                {"history": [{"news_id": x} for x in ids[:5]],
                 "candidates": [{"news_id": x} for x in ids[5:12]], "top_k": 3}, 200,
                lambda j: len(j["ranking"]) == 3 or pytest.fail("top_k")))
    out.append(("recommend_text", "POST", "/v1/models/mind/recommend",
                {"history": ["oil bank deal", {"news_id": ids[0]}],
                 "candidates": ["team win season", "market report price"]}, 200, None))
    out.append(("put_news", "PUT", "/v1/models/mind/news/NSOAK", {"title": "soak test title"},
                (200, 201), None))
    out.append(("models", "GET", "/v1/models", None, 200, None))
    out.append(("metrics", "GET", "/metrics", None, 200, None))
    # bad requests
    out += [
        ("bad_json", "POST", C, b'{"inputs": [', 400, None),
        ("bad_type", "POST", C, {"inputs": "oil"}, 400, None),
        ("bad_id", "POST", C, {"inputs": [{"input_ids": [99999]}]}, 400, None),
        ("bad_model", "POST", "/v1/models/nope/classify", {"inputs": ["a"]}, 404, None),
        ("bad_route", "GET", "/v3/nothing", None, 404, None),
        ("bad_method", "DELETE", C, None, 405, None),
        ("bad_news_id", "POST", "/v1/models/mind/recommend",
         {"history": [], "candidates": [{"news_id": "N-none"}]}, 400, None),
        ("bad_oip_shape", "POST", "/v2/models/classifier/infer",
         {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3],
                      "data": [1, 2]}]}, 400, None),
        ("bad_too_large", "POST", C, b'{"inputs": ["' + b"a" * (1 << 20) + b'"]}',
         # answered at the headers; the client may see the close before the 413
         (413, "reset"), None),
        ("bad_too_many", "POST", C, {"inputs": ["a"] * 1025}, 413, None),
    ]
    return out


def soak(d, seconds, threads, hup_every=None, warm_fraction=0.25):
    """Runs the mixed traffic for `seconds` with a SIGHUP every `hup_every`
    seconds (default: six in the run). Returns (results, extra counts, RSS
    after warm-up, RSS samples after warm-up, RSS at the end)."""
    pid = d.proc.pid
    reqs = traffic()
    rng = random.Random(7)

    def make(i, k):
        n = rng.randrange(len(reqs))
        kind, method, path, body, _, _ = reqs[n]
        return n, method, path, body, None

    load = Load(d.port, make, threads, timeout=300).start()
    stop = threading.Event()
    extra = {"vanished": 0, "sighup": 0}

    def chaos():
        body = http_bytes("POST", C, {"inputs": ["oil bank"] * 16})
        t_hup = time.monotonic()
        while not stop.wait(0.2):
            try:
                raw_send(d.port, body, linger_rst=rng.random() < 0.5).close()
                extra["vanished"] += 1
            except OSError:
                pass
            if time.monotonic() - t_hup > (hup_every or max(3.0, seconds / 6)):
                d.proc.send_signal(signal.SIGHUP)
                extra["sighup"] += 1
                t_hup = time.monotonic()

    ch = threading.Thread(target=chaos)
    ch.start()
    warm = max(2.0, seconds * warm_fraction)
    time.sleep(warm)
    # Baseline after warm-up: a moment with no connection of ours open.
    rss_warm = rss_kb(pid)
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds - warm:
        time.sleep(min(1.0, seconds / 20))
        samples.append(rss_kb(pid))
    stop.set()
    ch.join()
    res = load.stop()
    assert d.alive(), d.log()[-5000:]
    wrong = []
    for _, _, n, r in res:
        kind, _, _, _, status, check = reqs[n]
        if r.status not in (status if isinstance(status, tuple) else (status,)):
            wrong.append((kind, r))
        elif check:
            check(r.json())
    assert not wrong, wrong[:5]
    time.sleep(1.0)
    rss_end = rss_kb(pid)
    return res, extra, rss_warm, samples, rss_end


def fds_idle_baseline(d):
    """fd count once no client connection is open (log, listener, epoll, ...)."""
    time.sleep(0.3)
    return fd_count(d.proc.pid)


def sanitizer_errors(log):
    return re.findall(r"(ERROR: (?:Address|Leak|Thread|Memory)Sanitizer.*|runtime error:.*)", log)


def test_soak_under_asan_lsan_ubsan(start_daemon, monkeypatch, tmp_path):
    if not os.path.exists(ASAN_DAEMON):
        pytest.skip(f"{ASAN_DAEMON} missing: make VARIANT=asan {ASAN_DAEMON}")
    monkeypatch.setattr(itc, "DAEMON", ASAN_DAEMON)
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=64"
                           ":malloc_context_size=20",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
           "LSAN_OPTIONS": "exitcode=23"}
    d = start_daemon(models=MODELS, env=env, server=state_dir(tmp_path))
    pid = d.proc.pid
    base_fds = fds_idle_baseline(d)
    res, extra, rss_warm, samples, rss_end = soak(d, SOAK_SECONDS, 4)
    fds = wait_fds(pid, base_fds)
    fd_list = fd_targets(pid)
    m = metrics(d.port)
    rc = d.stop(timeout=120)
    log = d.log()
    errors = sanitizer_errors(log)
    lat = [r.latency for *_, r in res]
    report("soak_asan", seconds=SOAK_SECONDS, requests=len(res), vanished=extra["vanished"],
           sighups=extra["sighup"], p99_ms=round(percentile(lat, 99) * 1e3, 1),
           rss_kb_warm=rss_warm, rss_kb_max_after_warm=max(samples), rss_kb_end=rss_end,
           fds_warm=base_fds, fds_end=fds, exit_code=rc, sanitizer_errors=len(errors),
           process_open_fds=int(m.get("process_open_fds", -1)))
    assert not errors, "\n".join(errors[:10]) + "\n" + log[-5000:]
    assert rc == 0, log[-5000:]
    assert fds <= base_fds, fd_list
    # Loose under ASan: the 64 MB quarantine of freed blocks fills up slowly.
    assert rss_end - rss_warm < 96 * 1024, (rss_warm, samples, rss_end)


def test_soak_release_rss_flat_and_fds_back(start_daemon, tmp_path):
    if RELEASE_SECONDS <= 0:
        pytest.skip("STRESS_SOAK_RELEASE_SECONDS=0")
    d = start_daemon(models=MODELS, server=state_dir(tmp_path))
    pid = d.proc.pid
    base_fds = fds_idle_baseline(d)
    # A reload briefly holds two model sets (with their workspaces); glibc
    # keeps some of that memory, so RSS steps up over the first ~20 reloads
    # and then swings around a plateau. Reload every 0.4 s and warm up over
    # 40% of the run to reach it; a leak keeps climbing after.
    res, extra, rss_warm, samples, rss_end = soak(d, RELEASE_SECONDS, 4, hup_every=0.4,
                                                  warm_fraction=0.4)
    fds = wait_fds(pid, base_fds)
    half = len(samples) // 2
    peak1, peak2 = max(samples[:half]), max(samples[half:])
    report("soak_release", seconds=RELEASE_SECONDS, requests=len(res),
           vanished=extra["vanished"], sighups=extra["sighup"], rss_kb_warm=rss_warm,
           rss_kb_peak_first_half=peak1, rss_kb_peak_second_half=peak2, rss_kb_end=rss_end,
           rss_mb_after_warm="/".join(str(kb // 1024) for kb in samples),
           fds_warm=base_fds, fds_end=fds)
    assert fds <= base_fds, fd_targets(pid)
    # Flat: the second half's median is not above the first half's beyond the
    # allocator's swings (medians, since a reload in progress is a brief spike).
    med1, med2 = percentile(samples[:half], 50), percentile(samples[half:], 50)
    assert med2 - med1 < 12 * 1024, samples


def test_soak_under_valgrind(start_daemon, monkeypatch, tmp_path):
    if VALGRIND_SECONDS <= 0:
        pytest.skip("STRESS_VALGRIND_SECONDS=0")
    valgrind = shutil.which("valgrind")
    if not valgrind:
        pytest.skip("valgrind not installed (Debian package valgrind)")
    wrapper = tmp_path / "fastformerd-valgrind"
    vlog = tmp_path / "valgrind.log"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {valgrind} --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect "
        "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no "
        f"--log-file={vlog} {itc.DAEMON} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(itc, "DAEMON", str(wrapper))
    d = start_daemon(models=MODELS, server=state_dir(tmp_path))
    base_fds = None  # valgrind's own descriptors make /proc counts noisy: use the metric
    m0 = metrics(d.port)
    base_fds = int(m0["process_open_fds"])
    res, extra, rss_warm, samples, rss_end = soak(d, VALGRIND_SECONDS, 2)
    deadline = time.monotonic() + 30
    while int(metrics(d.port)["process_open_fds"]) > base_fds and time.monotonic() < deadline:
        time.sleep(0.2)
    fds = int(metrics(d.port)["process_open_fds"])
    rc = d.stop(timeout=300)
    text = vlog.read_text(errors="replace")
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    definitely = re.search(r"definitely lost: ([\d,]+) bytes", text)
    report("soak_valgrind", seconds=VALGRIND_SECONDS, requests=len(res),
           vanished=extra["vanished"], sighups=extra["sighup"],
           errors=summary.group(1) if summary else "?",
           definitely_lost=definitely.group(1) if definitely else "0",
           fds_warm=base_fds, fds_end=fds, exit_code=rc)
    assert rc == 0, text[-6000:]
    assert summary and summary.group(1) == "0", text[-6000:]
    assert fds <= base_fds
