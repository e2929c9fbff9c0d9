"""tls: what in-process TLS costs (issue 15). Two daemons with the same
model, one plain HTTP and one HTTPS (a throwaway EC P-256 certificate made
with openssl), driven by wrk in short runs alternating between them:
single-text classify of 64 tokens at 8 connections, with keep-alive (the
record layer's cost) and with Connection: close (a TCP connect and a TLS
handshake per request). Reported as req/s with TLS next to req/s without."""
import os
import re
import subprocess

import bench_models
from bench_daemon import Daemon, wrk, write_bodies
from bench_lib import fmt, log, median, verdict

NAME = "tls"
TITLE = "TLS: req/s over https next to plain http (wrk, classify 64 tokens, 8 connections)"
CONNS = 8
# A keep-alive client should lose little to TLS; one handshake per request costs more.
KEEP_ALIVE_RATIO_MIN = 0.85


def make_cert(tmp):
    """A self-signed EC P-256 certificate and key for 127.0.0.1 in tmp."""
    cert, key = os.path.join(tmp, "tls_cert.pem"), os.path.join(tmp, "tls_key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def negotiated(port):
    """The protocol and cipher a default OpenSSL client negotiates with the daemon."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"], input="",
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"New, (\S+), Cipher is (\S+)", r.stdout)
    return f"{m.group(1)} {m.group(2)}" if m else "?"


def run(ctx):
    model_dir = ctx.model("official")
    slices, slice_s = (2, 2) if ctx.quick else (4, 3)
    texts = bench_models.texts(os.path.join(model_dir, "vocab.txt"), 64, 64)
    bodies = write_bodies(os.path.join(ctx.tmp, "tls_classify.jsonl"),
                          [{"inputs": [t]} for t in texts])
    cert, key = make_cert(ctx.tmp)
    models = [{"name": "cls", "path": model_dir}]
    plain = Daemon(ctx.build, ctx.tmp, "tls_plain", models=models)
    try:
        tls = Daemon(ctx.build, ctx.tmp, "tls_https", models=models,
                     server={"tls_cert_file": cert, "tls_key_file": key})
    except Exception:
        plain.stop()
        raise
    route = "/v1/models/cls/classify"
    try:
        assert tls.scheme == "https" and plain.scheme == "http"
        for d in (plain, tls):
            status, body = d.post(route, '{"inputs": ["a fine film"]}')
            assert status == 200, body
            wrk(d.port, route, bodies, CONNS, 1, scheme=d.scheme)  # warm-up
        jobs = [(conn, label, d) for conn in ("keep-alive", "close")
                for label, d in (("http", plain), ("https", tls))]
        accs = {(c, lab): {"requests": 0, "duration_us": 0, "errors": 0, "p50s": [], "p99s": [],
                           "cpu_s": 0.0} for c, lab, _ in jobs}
        for i in range(slices):
            for conn, label, d in (jobs if i % 2 == 0 else jobs[::-1]):
                a = accs[(conn, label)]
                cpu0 = d.cpu_seconds()
                r = wrk(d.port, route, bodies, CONNS, slice_s, scheme=d.scheme,
                        close=conn == "close")
                a["cpu_s"] += d.cpu_seconds() - cpu0
                for k in ("requests", "duration_us", "errors"):
                    a[k] += r[k]
                a["p50s"].append(r["p50_us"])
                a["p99s"].append(r["p99_us"])
        rows = []
        for (conn, label), a in accs.items():
            a.update(conn=conn, scheme=label, req_s=a["requests"] / (a["duration_us"] / 1e6),
                     p50_us=median(a["p50s"]), p99_us=median(a["p99s"]),
                     cpu_ms_per_req=1e3 * a["cpu_s"] / max(1, a["requests"]))
            rows.append(a)
            log(f"tls {label} {conn}: {a['req_s']:.0f} req/s, p50 {a['p50_us'] / 1e3:.2f} ms, "
                f"daemon CPU {a['cpu_ms_per_req']:.3f} ms/req, errors {a['errors']}")
        ratio = {c: accs[(c, "https")]["req_s"] / accs[(c, "http")]["req_s"]
                 for c in ("keep-alive", "close")}
        ctx.res[NAME] = {"rows": rows, "ratio_keep_alive": ratio["keep-alive"],
                         "ratio_close": ratio["close"], "negotiated": negotiated(tls.port)}
    finally:
        plain.stop()
        tls.stop()


def targets(res):
    sec = res.get(NAME, {})
    r = sec.get("ratio_keep_alive")
    return [(f"https req/s >= {KEEP_ALIVE_RATIO_MIN} x http req/s (keep-alive, classify 64)",
             f"{fmt(r)}x; with a handshake per request {fmt(sec.get('ratio_close'))}x",
             verdict(r and r >= KEEP_ALIVE_RATIO_MIN))]


def report(res):
    sec = res.get(NAME)
    if not sec:
        return []
    out = ["Two daemons with the official-shape classifier (1 worker x 2 engine threads), one "
           f"plain and one with server.tls_cert_file (EC P-256; negotiated: {sec['negotiated']}), "
           "driven in "
           "alternating short wrk runs (1 thread, 8 connections, POST /v1/models/cls/classify, "
           "one 64-token text). \"close\" sends Connection: close, so every request is a new "
           "TCP connection and, over https, a new handshake. p50/p99 are medians of the runs'; "
           "daemon CPU is the daemon's user+system time per request.\n",
           "| connections | scheme | req/s | p50 ms | p99 ms | daemon CPU ms/req | errors |",
           "|---|---|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        out.append(f"| {r['conn']} | {r['scheme']} | {r['req_s']:.0f} | "
                   f"{r['p50_us'] / 1e3:.2f} | {r['p99_us'] / 1e3:.2f} | "
                   f"{r['cpu_ms_per_req']:.3f} | {r['errors']} |")
    out.append(f"\nhttps / http req/s: {fmt(sec['ratio_keep_alive'])}x with keep-alive, "
               f"{fmt(sec['ratio_close'])}x with a new connection per request.")
    return out
