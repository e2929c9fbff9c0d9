#!/usr/bin/env python3
"""Replays the Dockerfile without a Docker engine, as faithfully as this
machine allows: every stage starts from a fresh Debian 12 root made by
debootstrap (minbase, the closest thing to debian:bookworm-slim), its RUN
steps run in that root with chroot, COPY and COPY --from copy files between
the build context and the roots, and the final stage's ENTRYPOINT + CMD run
as its USER inside a private network namespace. The check then asks the
daemon for /healthz and /readyz, runs the HEALTHCHECK command, classifies a
review, and stops the daemon with SIGTERM as `docker stop` would.

Usage (root): deploy/docker/replay.py [--context DIR] [--work DIR] [--keep]
Needs debootstrap, unshare and network access to Debian's mirror.
"""
import argparse
import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

MIRROR = "http://deb.debian.org/debian"


def log(msg):
    print(f"docker-check: {msg}", flush=True)


def parse_dockerfile(path):
    """Returns a list of stages: {"name", "steps": [(instr, args)]}, joining
    continuation lines and dropping comments."""
    lines, cur = [], ""
    with open(path) as f:
        for raw in f:
            s = raw.rstrip("\n")
            if not cur and s.lstrip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            if cur.strip():
                lines.append(cur.strip())
            cur = ""
    stages = []
    for line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            if parts[0] != "debian:bookworm-slim":
                sys.exit(f"docker-check: unsupported base image {parts[0]}")
            stages.append({"name": name, "steps": []})
        else:
            stages[-1]["steps"].append((instr, rest.strip()))
    return stages


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Root:
    """A Debian root with /proc, /dev and resolv.conf for RUN steps."""

    def __init__(self, path):
        self.path = path
        self.mounts = []

    def __enter__(self):
        for src, dst, opts in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"])):
            target = os.path.join(self.path, dst)
            os.makedirs(target, exist_ok=True)
            run(["mount", *opts, src, target])
            self.mounts.append(target)
        shutil.copy("/etc/resolv.conf", os.path.join(self.path, "etc/resolv.conf"))
        return self

    def __exit__(self, *exc):
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", target], check=False)


def base_root(work):
    """A debootstrap minbase bookworm tarball, made once per work dir."""
    tar = os.path.join(work, "bookworm-minbase.tar")
    if os.path.exists(tar):
        return tar
    tmp = os.path.join(work, "debootstrap")
    shutil.rmtree(tmp, ignore_errors=True)
    log("debootstrap --variant=minbase bookworm (once)")
    t0 = time.time()
    run(["debootstrap", "--variant=minbase", "bookworm", tmp, MIRROR], stdout=subprocess.DEVNULL)
    run(["tar", "-C", tmp, "-cf", tar, "."])
    shutil.rmtree(tmp)
    log(f"base root ready in {time.time() - t0:.0f} s")
    return tar


def dockerignore(context):
    """Patterns of the context's .dockerignore (as Docker reads them: paths
    relative to the context, `**/` matching any depth)."""
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    lines = [line.strip() for line in open(path)]
    return [line for line in lines if line and not line.startswith("#")]


def ignored(rel, patterns):
    for pat in patterns:
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat.removeprefix("**/")) or \
                (pat.startswith("**/") and fnmatch.fnmatch(os.path.basename(rel), pat[3:])):
            return True
    return False


def copy_into(src_paths, dst_root, dest, workdir, context=None):
    if not dest.startswith("/"):
        dest = os.path.join(workdir, dest)
    target = dst_root + dest
    patterns = dockerignore(context) if context else []
    for src in src_paths:
        if os.path.isdir(src) and context:
            def skip(d, names):
                return [n for n in names
                        if ignored(os.path.relpath(os.path.join(d, n), context), patterns)]
            shutil.copytree(src, target, symlinks=True, ignore=skip, dirs_exist_ok=True)
        elif os.path.isdir(src):
            run(["mkdir", "-p", target])
            run(["cp", "-a", src.rstrip("/") + "/.", target])
        else:
            if dest.endswith("/"):
                run(["mkdir", "-p", target])
            else:
                run(["mkdir", "-p", os.path.dirname(target)])
            run(["cp", "-a", src, target])


def build_stage(stage, roots, context, work, base_tar):
    root = os.path.join(work, "stage-" + stage["name"])
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    run(["tar", "-C", root, "-xf", base_tar])
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    meta = {"workdir": "/", "user": "0:0", "env": {}, "entrypoint": [], "cmd": [],
            "healthcheck": [], "expose": []}
    with Root(root):
        for instr, args in stage["steps"]:
            if instr == "RUN":
                log(f"[{stage['name']}] RUN {args[:70]}...")
                script = f"cd {shlex.quote(meta['workdir'])} && {args}"
                run(["chroot", root, "/usr/bin/env", "-i",
                     *[f"{k}={v}" for k, v in {**env, **meta["env"]}.items()],
                     "/bin/sh", "-c", script])
            elif instr == "WORKDIR":
                meta["workdir"] = os.path.join(meta["workdir"], args)
                os.makedirs(root + meta["workdir"], exist_ok=True)
            elif instr == "COPY":
                parts = shlex.split(args)
                if parts[0].startswith("--from="):
                    src_root = roots[parts[0].split("=", 1)[1]]
                    srcs = [src_root + p for p in parts[1:-1]]
                else:
                    srcs = [os.path.join(context, p) for p in parts[:-1]]
                    copy_into(srcs, root, parts[-1], meta["workdir"], context)
                    continue
                copy_into(srcs, root, parts[-1], meta["workdir"])
            elif instr == "ENV":
                key, _, value = args.partition("=")
                meta["env"][key.strip()] = value.strip()
            elif instr == "USER":
                meta["user"] = args
            elif instr == "EXPOSE":
                meta["expose"].append(args)
            elif instr in ("ENTRYPOINT", "CMD"):
                meta[instr.lower()] = json.loads(args)  # exec form only
            elif instr == "HEALTHCHECK":
                meta["healthcheck"] = json.loads(args[args.index("CMD") + 3:].strip())
            else:
                sys.exit(f"docker-check: unsupported instruction {instr}")
    roots[stage["name"]] = root
    return root, meta


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run_container(root, meta):
    """Runs ENTRYPOINT + CMD in the final root, as USER, in this process's
    (private) network namespace, and checks it end to end."""
    run(["ip", "link", "set", "lo", "up"])
    uid, _, gid = meta["user"].partition(":")
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           *[f"{k}={v}" for k, v in meta["env"].items()]]
    argv = ["chroot", f"--userspec={uid}:{gid or uid}", root, "/usr/bin/env", "-i", *env]
    with Root(root):
        daemon = subprocess.Popen(argv + meta["entrypoint"] + meta["cmd"])
        try:
            port = int(meta["expose"][0].split("/")[0])
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 300
            status = None
            while time.time() < deadline:
                if daemon.poll() is not None:
                    sys.exit(f"docker-check: daemon exited with {daemon.returncode}")
                try:
                    status, _ = http("GET", base + "/readyz", timeout=2)
                except OSError:
                    status = None
                if status == 200:
                    break
                time.sleep(0.5)
            if status != 200:
                sys.exit("docker-check: /readyz never returned 200")
            log("GET /readyz -> 200")
            status, _ = http("GET", base + "/healthz")
            assert status == 200, f"/healthz -> {status}"
            rc = subprocess.run(argv + meta["healthcheck"]).returncode
            assert rc == 0, f"HEALTHCHECK exited {rc}"
            log("HEALTHCHECK -> exit 0")
            review = "A wonderful, moving film with brilliant acting. I loved every minute of it."
            status, body = http("POST", base + "/v1/models/imdb-sentiment/classify",
                                {"inputs": [review]})
            assert status == 200, f"classify -> {status} {body!r}"
            pred = json.loads(body)["predictions"][0]
            assert pred["label"] == "positive", f"classify -> {pred}"
            log(f"classify -> {pred['label']} {pred['probabilities']}")
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                rc = daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                rc = daemon.wait()
        assert rc == 0, f"daemon exited {rc} after SIGTERM"
        log("SIGTERM -> exit 0")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--context", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--work", default="/tmp/fastformerd-docker-check")
    ap.add_argument("--keep", action="store_true", help="keep the stage roots")
    ap.add_argument("--_run-final", dest="run_final", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_final:
        root, meta_json = args.run_final.split(":", 1)
        run_container(root, json.loads(meta_json))
        return
    if os.geteuid() != 0:
        sys.exit("docker-check: must run as root (debootstrap, chroot, mount)")
    context = os.path.abspath(args.context)
    os.makedirs(args.work, exist_ok=True)
    t0 = time.time()
    stages = parse_dockerfile(os.path.join(context, "Dockerfile"))
    base_tar = base_root(args.work)
    roots = {}
    for stage in stages:
        root, meta = build_stage(stage, roots, context, args.work, base_tar)
    log(f"built {len(stages)} stages in {time.time() - t0:.0f} s")
    # The final stage runs in a fresh network namespace, like a container.
    run(["unshare", "--net", sys.executable, os.path.abspath(__file__),
         "--_run-final", f"{root}:{json.dumps(meta)}"])
    if not args.keep:
        for r in roots.values():
            shutil.rmtree(r, ignore_errors=True)
    log(f"passed in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
