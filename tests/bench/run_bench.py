#!/usr/bin/python3
"""run_bench: `make bench`. Runs the benchmark sections and writes a Markdown
report to build/bench/results.md (and stdout), raw figures to
build/bench/results.json, and the length plot to build/bench/length.svg.
Not a test: nothing here fails on slow numbers.

The machine is shared and noisy, so every target is a ratio of two
measurements taken in the same run, interleaved (A B A B ...) and reduced to
medians, so that slow drift of the machine's load cancels.

Sections, in order (each is one module, tests/bench/section_NAME.py, with
NAME, TITLE, run(ctx), targets(res) and report(res); SECTIONS below is the
registry, so a new section is a new module and one line here):
  ort       engine vs ONNX Runtime at 1x32/32x128/64x256, 1 and 2 threads,
            three widths; 2-thread gain; 1x32 latency (issue 11)
  products  where each runtime's forward goes (1 thread): its weight products
            alone vs the rest, the engine's and ONNX Runtime's (MLAS)
  engine    forward vs its own cblas_sgemm calls replayed alone (gemm_share)
  torch     C engine vs the PyTorch reference on the same weights
  length    tokens/s at lengths 64..4096 for the engine, ONNX Runtime and a
            softmax Transformer; length.csv and length.svg
  server    fastformerd end to end with wrk: 1/8/32/128 connections,
            server_efficiency, p50 vs the engine's forward, batching
  recommend catalog ids vs raw titles (cache disabled, then warm)
  catalog   100k-item news store: restart-to-ready, catalog-wide top-k p50
  memory    peak RSS idle and under load, RSS after 10k and 200k requests
  oip       Open Inference Protocol infer at 32x128 input_ids: binary tensor
            data vs JSON (req/s, CPU per request)
  tls       req/s over https next to plain http, keep-alive and a handshake
            per request (issue 15)
  news_pg   the news catalog in PostgreSQL: seed, restart to ready at 100k items,
            PUT latency, a PUT on one replica served by another

BENCH_QUICK=1 (or --quick) shortens every section (fewer rounds and shapes,
shorter wrk runs, 50k instead of 200k requests). --only ort,length,... runs a
subset. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the measured
processes' environment (OpenBLAS autodetects, as in deployment) unless
BENCH_KEEP_CORETYPE=1. Needs Debian's python3-torch (models are written with
the reference model), wrk, gnuplot, node with onnxruntime-node in --ort-dir
(the ONNX Runtime rows say so when it is missing), and the binaries of
`make all build/bench_engine`."""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import section_catalog  # noqa: E402
import section_engine  # noqa: E402
import section_length  # noqa: E402
import section_memory  # noqa: E402
import section_news_pg  # noqa: E402
import section_oip  # noqa: E402
import section_ort  # noqa: E402
import section_products  # noqa: E402
import section_recommend  # noqa: E402
import section_server  # noqa: E402
import section_tls  # noqa: E402
import section_torch  # noqa: E402
from bench_lib import ROOT, Context, Unavailable, log, thread_env  # noqa: E402

SECTIONS = [section_ort, section_products, section_engine, section_torch, section_length, section_server,
            section_recommend, section_catalog, section_memory, section_oip, section_tls,
            section_news_pg]
BY_NAME = {s.NAME: s for s in SECTIONS}
# The CPU features the engine's kernels and ONNX Runtime's MLAS dispatch on.
CPU_FLAGS = ["avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx_vnni"]


# ---- machine description -----------------------------------------------------------

def cpu_flags():
    """CPU_FLAGS present in /proc/cpuinfo, and those absent."""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
    except OSError:
        m = None
    have = set(m.group(1).split()) if m else set()
    return [f for f in CPU_FLAGS if f in have], [f for f in CPU_FLAGS if f not in have]


def kernel_path(build):
    """The code path the engine chose, from `fastformer-cli bench`'s
    "kernel path:" line; "unknown" when the engine does not print one."""
    model = os.path.join(ROOT, "models", "review-sentiment")
    try:
        r = subprocess.run([os.path.join(build, "fastformer-cli"), "bench", "--model", model,
                            "--threads", "1", "--min-seconds", "0"], capture_output=True,
                           text=True, timeout=120, env=thread_env(1))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"kernel path:\s*(.+)", r.stdout + r.stderr)
    return m.group(1).strip() if m else "unknown (fastformer-cli bench prints no kernel path)"


def machine(build):
    def run(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except OSError:
            return ""
    cpu = re.search(r"Model name:\s*(.+)", run(["lscpu"]))
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    dirty = run(["git", "-C", ROOT, "status", "--porcelain", "model", "server"]).strip()
    have, absent = cpu_flags()
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            autogroup = "on" if f.read().strip() == "1" else "off"
    except OSError:
        autogroup = "unknown"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu.group(1).strip() if cpu else "unknown",
        "cores": os.cpu_count(),
        "kernel": os.uname().release,
        "load_at_start": load,
        "commit": commit + (" (model/ or server/ modified)" if dirty else ""),
        "cpu_flags": have,
        "cpu_flags_absent": absent,
        "kernel_path": kernel_path(build),
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "openblas_l2_size_env": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
        "coretype_kept": os.environ.get("BENCH_KEEP_CORETYPE") == "1",
        "autogroup": autogroup,
    }


# ---- the report --------------------------------------------------------------------------

def header(res, quick):
    mc = res["machine"]
    ct = (f"OPENBLAS_CORETYPE={mc['openblas_coretype_env']} kept (BENCH_KEEP_CORETYPE=1)"
          if mc["coretype_kept"] else
          f"autodetected; the session's OPENBLAS_CORETYPE={mc['openblas_coretype_env']} and "
          f"OPENBLAS_L2_SIZE={mc['openblas_l2_size_env']} are removed for every measured "
          "process, as in deployment")
    return [
        f"# fastformerd benchmarks ({mc['date']})\n",
        f"- Machine: {mc['cpu']}, {mc['cores']} cores, Linux {mc['kernel']}; load average at "
        f"start {mc['load_at_start']}, at the end {mc.get('load_at_end', '?')} (a shared, busy "
        "machine: absolute figures are noisy, the targets are ratios measured within this run, "
        "interleaved, medians); kernel autogrouping "
        f"{mc.get('autogroup', 'unknown')} (/proc/sys/kernel/sched_autogroup_enabled: when on, "
        "another session's nice 19 jobs still take a fair share of the cores from these "
        "processes; 0 makes nice levels hold)",
        f"- Commit {mc['commit']}; OpenBLAS 0.3.21 core `{res.get('corename', '?')}` ({ct}); "
        f"{res.get('torch_version', 'torch n/a')} on the same OpenBLAS",
        "- Threads: every measured process gets OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = its "
        "thread count (ONNX Runtime: intraOpNumThreads, interOpNumThreads 1; PyTorch: "
        "torch.set_num_threads), except the engine: T engine threads (a team of T lanes) x 1 "
        "OpenBLAS thread; each section says which counts it runs; fastformerd with workers 1 x "
        "engine_threads 2 (its default); wrk with 1 thread on the same 2 cores",
        "- Wall-clock figures decide the targets. Beside them, the same ratios in CPU time "
        "(process CPU seconds): on a shared machine a process that never sleeps gets a fraction "
        "of a core while one that sleeps between requests is scheduled at once, so wall ratios "
        "between such processes mislead; CPU time counts the work itself",
        f"- Mode: {'BENCH_QUICK=1 (short runs)' if quick else 'full'}\n",
    ]


def kernels_line(res):
    mc = res["machine"]
    ort = res.get(section_ort.NAME, {}).get("version")
    return (f"Kernels: CPU flags `{' '.join(mc['cpu_flags']) or 'none'}`"
            + (f" (absent: {' '.join(mc['cpu_flags_absent'])})" if mc["cpu_flags_absent"] else "")
            + f"; engine code path **{mc['kernel_path']}**; OpenBLAS core "
            f"`{res.get('corename', '?')}`"
            + (f"; ONNX Runtime {ort} (MLAS dispatches on the same flags)" if ort else "")
            + ".\n")


def report(res, sections, quick):
    out = header(res, quick)
    for name, why in res["failures"].items():
        out.append(f"- **{name} benchmark failed**: {why}")
    out += ["## Targets\n", kernels_line(res), "| target | measured | holds |", "|---|---|---|"]
    for s in sections:
        out += ["| " + " | ".join(row) + " |" for row in s.targets(res)]
    out.append("")
    for i, s in enumerate(sections, 1):
        body = s.report(res)
        if body:
            out += [f"## {i}. {s.TITLE}\n", *body]
    return "\n".join(out) + "\n"


# ---- main ----------------------------------------------------------------------------------

def run_sections(ctx, sections):
    ctx.res["failures"] = {}
    for s in sections:
        t0 = time.monotonic()
        try:
            s.run(ctx)
        except (RuntimeError, OSError, AssertionError, ValueError, KeyError, ImportError,
                Unavailable, subprocess.SubprocessError) as e:
            # One broken benchmark (e.g. a daemon that does not start yet)
            # must not hide the others: the table says what failed.
            log(f"{s.NAME}: FAILED: {e}")
            why = str(e).strip().splitlines()[0][:300] if str(e).strip() else repr(e)
            if isinstance(e, ImportError):
                why = f"needs Debian's python3-torch, run with /usr/bin/python3 ({why})"
            ctx.res["failures"][s.NAME] = why
        ctx.res.setdefault("section_seconds", {})[s.NAME] = round(time.monotonic() - t0, 1)
        log(f"{s.NAME}: {time.monotonic() - t0:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--ort-dir", default=os.path.join(ROOT, "build", "bench", "ort"),
                    help="where npm installed onnxruntime-node (node_modules/ inside)")
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    ap.add_argument("--only", default=",".join(BY_NAME),
                    help="comma-separated subset of " + ",".join(BY_NAME))
    args = ap.parse_args()
    names = [p for p in args.only.split(",") if p]
    for p in names:
        if p not in BY_NAME:
            ap.error(f"--only: unknown section '{p}' (known: {', '.join(BY_NAME)})")
    sections = [s for s in SECTIONS if s.NAME in names]
    out_dir = os.path.join(ROOT, "build", "bench")
    os.makedirs(out_dir, exist_ok=True)

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fastformerd-bench-") as tmp:
        ctx = Context(os.path.abspath(args.build), args.quick, out_dir, tmp,
                      os.path.abspath(args.ort_dir))
        ctx.res.update(machine=machine(ctx.build), quick=args.quick)
        if ctx.res["machine"]["autogroup"] == "on":
            log("warning: kernel autogrouping is on, so other sessions' jobs take a fair share of "
                "the cores whatever their nice level; as root, `echo 0 > "
                "/proc/sys/kernel/sched_autogroup_enabled` before benchmarking (1 restores it)")
        run_sections(ctx, sections)
    res = ctx.res
    with open("/proc/loadavg") as f:
        res["machine"]["load_at_end"] = " ".join(f.read().split()[:3])
    res["seconds"] = time.monotonic() - t0
    text = report(res, sections, args.quick)
    text += f"\n_{res['seconds']:.0f} s; raw figures in build/bench/results.json._\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
