"""bench_lib: what every section of `make bench` shares: the environment of
measured processes, the line-protocol measuring processes (bench_engine,
torch_bench, ort_bench), round-robin interleaving with medians, the run's
Context, and the report's number formatting.

The machine is shared and noisy, so every target is a ratio of two
measurements taken in the same run, interleaved (A B A B ...) and reduced to
medians, so that slow drift of the machine's load cancels."""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def read_config(model_dir):
    """A model directory's config.json as a dict."""
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def bench_id(s, t, vocab_size):
    """Token t of sequence s of the bench inputs: the same function as
    bench_engine.c's bench_id and ort_bench.mjs's benchId, so that every
    system measures the same ids."""
    x = (s * 1000003 + t * 7919 + 12345) & 0xFFFFFFFF
    x = (x * 2654435761) & 0xFFFFFFFF
    x ^= x >> 16
    return 1 + x % (vocab_size - 1)


class Unavailable(Exception):
    """A section (or part of one) cannot run here, e.g. ONNX Runtime is not
    installed; the message says why and the report prints it."""


class Context:
    """One run of `make bench`: where the binaries are, quick or full, the
    output and temporary directories, and the results (res, written to
    results.json). Model directories are written on first use (bench_models)
    and cached under out_dir/models."""

    def __init__(self, build, quick, out_dir, tmp, ort_dir):
        self.build = build
        self.quick = quick
        self.out_dir = out_dir
        self.tmp = tmp
        self.ort_dir = ort_dir
        self.res = {}
        self._models = {}

    def model(self, name):
        """The directory of bench model `name` (see bench_models.MODELS)."""
        if name not in self._models:
            import bench_models  # needs python3-torch: imported when first needed
            self._models[name] = bench_models.model_dir(name, os.path.join(self.out_dir, "models"))
        return self._models[name]


def child_env(**extra):
    """The environment of every measured process (bench_engine, PyTorch,
    ONNX Runtime, fastformerd). OPENBLAS_CORETYPE is removed so that OpenBLAS
    picks its kernels for this CPU, as the deployed daemon does (deploy/ never
    sets it); a session that exports e.g. Haswell would otherwise force AVX2
    kernels on an AVX-512 machine. OPENBLAS_L2_SIZE goes with it: the two are
    set as a pair and a cache size meant for one core type must not tune
    another's blocking. BENCH_KEEP_CORETYPE=1 keeps both inherited values."""
    env = dict(os.environ, **extra)
    if os.environ.get("BENCH_KEEP_CORETYPE") != "1":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def thread_env(threads):
    """Every thread-count variable a measured process may read, set to
    `threads`, so that no library picks its own."""
    t = str(threads)
    return child_env(OPENBLAS_NUM_THREADS=t, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t)


# ---- long-lived measuring processes --------------------------------------------------

class Measurer:
    """A subprocess speaking the bench_engine line protocol: one command
    line in, one "ok ..." or "error ..." line out."""

    def __init__(self, name, argv, threads, env=None):
        self.name = name
        self.last = {}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env or thread_env(threads), text=True, bufsize=1)

    def ask_raw(self, line):
        """The reply after "ok" as one string (JSON replies keep their spaces)."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply.startswith("ok"):
            raise RuntimeError(f"{self.name}: '{line[:60]}' -> "
                               f"{reply.strip() or 'no reply (exited?)'}")
        return reply[2:].strip()

    def ask(self, line):
        """The reply's fields after "ok"."""
        return self.ask_raw(line).split()

    def seconds(self, cmd):
        """The first field of the reply; the whole reply is kept in
        self.last[command word] (bench_engine adds GFLOP and GEMM calls)."""
        reply = self.ask(cmd)
        self.last[cmd.split()[0]] = reply
        return float(reply[0])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class Measurers:
    """Several Measurers that are all closed together (a with-block)."""

    def __init__(self, **procs):
        self.procs = procs

    def __enter__(self):
        return self.procs

    def __exit__(self, *exc):
        for p in self.procs.values():
            p.close()


def engine_proc(build, model_dir, threads):
    """bench_engine with `threads` engine threads (a team of that many lanes,
    model/parallel.h) x 1 OpenBLAS thread each, as the daemon runs a worker of
    batching.engine_threads."""
    return Measurer(f"bench_engine({os.path.basename(model_dir)}, {threads}t)",
                    [os.path.join(build, "bench_engine"), "--model", model_dir,
                     "--threads", str(threads)], threads,
                    env=child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                                  MKL_NUM_THREADS="1"))


def torch_proc(model_dir, threads, transformer=False):
    """torch_bench: the reference Fastformer, or with transformer=True a
    softmax-attention nn.TransformerEncoder of the same dimensions."""
    kind = "transformer" if transformer else "torch"
    return Measurer(f"{kind}({os.path.basename(model_dir)}, {threads}t)",
                    [PYTHON, os.path.join(HERE, "torch_bench.py"), model_dir, str(threads)]
                    + (["--transformer"] if transformer else []), threads)


def ort_proc(ort_dir, onnx_path, vocab_size, threads):
    """ort_bench.mjs: an ONNX Runtime session with `threads` intra-op threads."""
    return Measurer(f"onnxruntime({os.path.basename(onnx_path)}, {threads}t)",
                    ["node", os.path.join(HERE, "ort_bench.mjs"), "--ort-dir", ort_dir,
                     "--model", onnx_path, "--vocab", str(vocab_size),
                     "--threads", str(threads)], threads)


def reps_for(measurer, cmd_fmt, block_s):
    """Warm-up run, then the repetitions that make one block last ~block_s
    (a warm-up longer than a block already tells: one repetition)."""
    t = measurer.seconds(cmd_fmt.format(n=1))
    if t < block_s:
        t = measurer.seconds(cmd_fmt.format(n=1))
    return max(1, min(10_000, int(block_s / max(t, 1e-5))))


def interleaved(jobs, rounds):
    """jobs: {key: (measurer, cmd_fmt, reps)}; runs them round-robin `rounds`
    times (rotating the start so no job always goes first) and returns
    ({key: median wall seconds per repetition}, {key: median CPU seconds per
    repetition}). CPU seconds (the reply's third field) count the work done
    whatever share of the cores the busy machine gave the process."""
    keys = list(jobs)
    per = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            m, fmt, reps = jobs[k]
            per[k].append(m.seconds(fmt.format(n=reps)) / reps)
            cpu[k].append(float(m.last[fmt.split()[0]][2]) / reps)
    return ({k: median(v) for k, v in per.items()}, {k: median(v) for k, v in cpu.items()})


# ---- the report ------------------------------------------------------------------------

def fmt(x, spec=".2f"):
    if x is None or x != x:
        return "n/a"
    return format(x, spec)


def verdict(ok, cpu_ok=None):
    """By the wall-clock figure; the CPU-time figure's verdict in brackets."""
    v = "n/a" if ok is None else ("yes" if ok else "**no**")
    if cpu_ok is not None:
        v += f" (CPU time: {'yes' if cpu_ok else 'no'})"
    return v
