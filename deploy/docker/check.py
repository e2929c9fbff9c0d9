#!/usr/bin/env python3
"""Builds the image from the repository's Dockerfile with a real Docker engine
(Debian's docker.io) and checks it end to end: /readyz answers 200 through a
published port, the sentiment model gets a clearly positive and a clearly
negative review right, the image's HEALTHCHECK reaches "healthy", the daemon
runs as the Dockerfile's non-root USER, and `docker stop` ends it with exit 0
within the drain timeout (SIGTERM reaches PID 1 and it drains).

No registry can be reached, so the base image debian:bookworm-slim is made
here, once: `debootstrap --variant=minbase bookworm`, trimmed and configured
as Debian's official slim image is, then `docker import`ed. The root tarball
is kept in build/docker/ and the image stays in the engine, so reruns skip
both. When no engine answers, dockerd is started (log: build/docker/dockerd.log)
and stopped again at the end. The containers and images the check makes are
removed; the base image is kept.

Usage (root): deploy/docker/check.py   (make docker-check)
Environment:
  DOCKER                client (default /usr/bin/docker, Debian's, when present)
  DOCKERD_ARGS          extra dockerd arguments, used only when dockerd is started here
  DOCKER_CHECK_NETWORK  network of the build's RUN steps (default: the bridge; "host"
                        where the bridge cannot reach deb.debian.org)
  DOCKER_CHECK_ARGS     arguments appended to the image's CMD, e.g. a broken
                        "--model review-sentiment=/nonexistent" to see the check fail
  DOCKER_CHECK_READY_S  how long to wait for /readyz (default 180)
  DOCKER_CHECK_KEEP=1   keep the images and the container for inspection
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(REPO, "build", "docker")
MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = "debian:bookworm-slim"
BASE_TAR = os.path.join(WORK, "bookworm-minbase.tar")
DOCKER = os.environ.get("DOCKER") or ("/usr/bin/docker" if os.path.exists("/usr/bin/docker")
                                      else "docker")
T0 = time.monotonic()


class CheckFailed(Exception):
    pass


def log(msg):
    print(f"docker-check [{time.monotonic() - T0:5.0f} s] {msg}", flush=True)


def docker(*args, check=True, **kw):
    """Runs the docker client; returns its stdout (text). Raises CheckFailed
    with the client's stderr when check is set and it fails."""
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise CheckFailed(f"docker {' '.join(args[:3])} ... failed ({r.returncode}): "
                          f"{r.stderr.strip()}")
    return r.stdout.strip() if r.returncode == 0 else None


def engine_answers():
    return subprocess.run([DOCKER, "info"], capture_output=True).returncode == 0


# ---- the engine -----------------------------------------------------------

def start_dockerd():
    """Starts dockerd in the background when no engine answers; returns the
    Popen to stop at the end, or None when an engine was already running."""
    if engine_answers():
        return None
    if shutil.which("dockerd") is None:
        raise CheckFailed("no Docker engine answers and dockerd is not installed "
                          "(apt-get install docker.io, or make deps-ci)")
    if os.geteuid() != 0:
        raise CheckFailed("no Docker engine answers; starting dockerd needs root")
    argv = ["dockerd", *shlex.split(os.environ.get("DOCKERD_ARGS", ""))]
    host = os.environ.get("DOCKER_HOST", "")
    if host:
        argv += ["-H", host]
    logpath = os.path.join(WORK, "dockerd.log")
    log(f"no engine answers: starting {' '.join(argv)} (log {os.path.relpath(logpath, REPO)})")
    with open(logpath, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not engine_answers():
        if proc.poll() is not None:
            raise CheckFailed(f"dockerd exited with {proc.returncode}:\n{tail(logpath)}")
        if time.monotonic() > deadline:
            stop_dockerd(proc)
            raise CheckFailed(f"dockerd did not answer within 60 s:\n{tail(logpath)}")
        time.sleep(0.5)
    log("dockerd is up")
    return proc


def stop_dockerd(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log(f"stopped the dockerd started here (exit {proc.returncode})")


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---- the base image -------------------------------------------------------

# What the official debian:bookworm-slim adds to a minbase root (debuerreotype's
# minimizing config): the updates and security suites; dpkg without fsync after
# each file (also speeds up the second stage below); no docs, man pages or
# locales from later installs; no .deb cache and no translations from apt.
SLIM_FILES = {
    "etc/apt/sources.list.d/debian.sources":
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
    "etc/dpkg/dpkg.cfg.d/docker-apt-speedup": "force-unsafe-io\n",
    "etc/dpkg/dpkg.cfg.d/docker":
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/man/*\npath-exclude /usr/share/groff/*\n"
        "path-exclude /usr/share/info/*\npath-exclude /usr/share/lintian/*\n"
        "path-exclude /usr/share/locale/*\n",
    "etc/apt/apt.conf.d/docker-clean":
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n',
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
}


def make_base_tar():
    """debootstrap --variant=minbase bookworm into a temporary root under
    build/docker/, slimmed, packed as BASE_TAR. Runs debootstrap's two stages
    apart (--foreign, then --second-stage in the root) so that the slim
    config, unsafe-io included, is in place before dpkg configures anything."""
    if os.geteuid() != 0:
        raise CheckFailed("making the base image needs root (debootstrap)")
    if shutil.which("debootstrap") is None:
        raise CheckFailed("debootstrap is not installed (apt-get install debootstrap, "
                          "or make deps-ci)")
    root = tempfile.mkdtemp(prefix="rootfs.", dir=WORK)
    logpath = os.path.join(WORK, "debootstrap.log")
    try:
        log(f"debootstrap --variant=minbase bookworm {MIRROR} (once; log "
            f"{os.path.relpath(logpath, REPO)})")
        with open(logpath, "wb") as out:
            for argv in (["debootstrap", "--foreign", "--variant=minbase", "bookworm", root,
                          MIRROR],
                         ["chroot", root, "/debootstrap/debootstrap", "--second-stage"]):
                if argv[0] == "chroot":
                    write_slim_files(root)
                r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)
                if r.returncode != 0:
                    raise CheckFailed(f"{' '.join(argv[:3])} failed ({r.returncode}):\n"
                                      f"{tail(logpath)}")
        os.remove(os.path.join(root, "etc/apt/sources.list"))
        subprocess.run(["sh", "-c", "cd \"$1\" && rm -rf var/cache/apt/archives/*.deb "
                        "var/lib/apt/lists/* usr/share/man/* usr/share/info/* "
                        "usr/share/locale/* && find usr/share/doc -type f ! -name copyright "
                        "-delete", "sh", root], check=True)
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", BASE_TAR + ".part", "."],
                       check=True)
        os.rename(BASE_TAR + ".part", BASE_TAR)
        log(f"base root packed as {os.path.relpath(BASE_TAR, REPO)} "
            f"({os.path.getsize(BASE_TAR) / 1e6:.0f} MB)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_slim_files(root):
    for rel, text in SLIM_FILES.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def ensure_base_image():
    if docker("image", "inspect", BASE_IMAGE, check=False) is not None:
        log(f"base image {BASE_IMAGE} is in the engine")
        return
    if os.path.exists(BASE_TAR):
        log(f"base root {os.path.relpath(BASE_TAR, REPO)} is cached")
    else:
        make_base_tar()
    with open(BASE_TAR, "rb") as f:
        docker("import", "--change", 'CMD ["bash"]', "-", BASE_IMAGE, stdin=f)
    log(f"imported {os.path.relpath(BASE_TAR, REPO)} as {BASE_IMAGE}")


# ---- build, run, check ----------------------------------------------------

def build(tag, target=None):
    """docker build of the repository's Dockerfile with the classic builder,
    which uses the local base image and leaves each stage's layers as images
    that `docker rmi` of the tag removes again. Prints the Step lines of the
    steps that run (not those taken from the cache); the whole output goes to
    build/docker/build.log."""
    argv = [DOCKER, "build", "--force-rm", "-t", tag]
    if target:
        argv += ["--target", target]
    if os.environ.get("DOCKER_CHECK_NETWORK"):
        argv += ["--network", os.environ["DOCKER_CHECK_NETWORK"]]
    logpath = os.path.join(WORK, "build.log")
    with open(logpath, "a") as out:
        proc = subprocess.Popen(argv + [REPO], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})
        step = None
        for line in proc.stdout:
            out.write(line)
            if step and "Using cache" not in line:
                log("  " + step.rstrip()[:100])
            step = line if line.startswith("Step ") else None
        proc.wait()
    if proc.returncode != 0:
        raise CheckFailed(f"docker build failed ({proc.returncode}):\n{tail(logpath)}")


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def inspect(name, fmt):
    return docker("inspect", "--format", fmt, name)


def container_logs(name):
    r = subprocess.run([DOCKER, "logs", "--tail", "40", name], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


def check_running(name):
    if inspect(name, "{{.State.Running}}") != "true":
        raise CheckFailed(f"the container exited with {inspect(name, '{{.State.ExitCode}}')} "
                          f"before /readyz answered 200; its log:\n{container_logs(name)}")


def wait_ready(name, base):
    limit_s = float(os.environ.get("DOCKER_CHECK_READY_S", "180"))
    deadline = time.monotonic() + limit_s
    last = "no answer"
    while time.monotonic() < deadline:
        check_running(name)
        try:
            status, body = http("GET", base + "/readyz", timeout=2)
            last = f"{status} {body.decode(errors='replace').strip()}"
            if status == 200:
                return
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    raise CheckFailed(f"the daemon in the container did not become ready within {limit_s:.0f} s "
                      f"(last /readyz: {last}); its log:\n{container_logs(name)}")


def check_classify(base):
    """Finds the sentiment model in the image's config (the classification
    model labelled negative/positive, whatever its name) and asks it about a
    clearly positive and a clearly negative review."""
    status, body = http("GET", base + "/v1/models")
    if status != 200:
        raise CheckFailed(f"GET /v1/models -> {status} {body!r}")
    names = [m["name"] for m in json.loads(body)["models"] if m.get("task") == "classification"]
    sentiment = []
    for name in names:
        status, body = http("GET", f"{base}/v1/models/{name}")
        if status != 200:
            raise CheckFailed(f"GET /v1/models/{name} -> {status} {body!r}")
        if {"negative", "positive"} <= set(json.loads(body).get("labels") or []):
            sentiment.append(name)
    if not sentiment:
        raise CheckFailed(f"no classification model labelled negative/positive among {names}")
    name = sentiment[0]
    reviews = {
        "positive": "A wonderful, moving film with brilliant acting. I loved every minute of it.",
        "negative": "A dull, boring mess with terrible acting. The worst film I have ever seen, "
                    "a complete waste of time.",
    }
    status, body = http("POST", f"{base}/v1/models/{name}/classify",
                        {"inputs": list(reviews.values())})
    if status != 200:
        raise CheckFailed(f"POST /v1/models/{name}/classify -> {status} {body!r}")
    preds = json.loads(body)["predictions"]
    for want, pred in zip(reviews, preds):
        if pred["label"] != want:
            raise CheckFailed(f"{name} called the {want} review {pred}")
        log(f"classify {name}: {want} review -> {pred['label']} {pred['probabilities']}")


def wait_healthy(name):
    """The image's own HEALTHCHECK (docker runs it every interval) must reach
    healthy; allows interval x (retries + 2)."""
    hc = json.loads(inspect(name, "{{json .Config.Healthcheck}}") or "null")
    if not hc or not hc.get("Test"):
        raise CheckFailed("the image has no HEALTHCHECK")
    interval_s = hc.get("Interval", 30 * 10**9) / 1e9
    deadline = time.monotonic() + interval_s * (hc.get("Retries", 3) + 2)
    while time.monotonic() < deadline:
        status = inspect(name, "{{.State.Health.Status}}")
        if status == "healthy":
            log(f"HEALTHCHECK {hc['Test'][1:]} -> healthy")
            return
        if status == "unhealthy":
            break
        time.sleep(1)
    raise CheckFailed(f"health status {inspect(name, '{{.State.Health.Status}}')}; "
                      f"probe log: {inspect(name, '{{json .State.Health.Log}}')}")


def check_user(image, name):
    """PID 1 of the container runs as the image's USER (the Dockerfile's last),
    and that is not root. Read through docker exec, so it holds whatever PID
    namespace the engine uses."""
    user = inspect(image, "{{.Config.User}}")
    if not user:
        raise CheckFailed("the image sets no USER: the daemon would run as root")
    uid, _, gid = user.partition(":")
    if not uid.isdigit():  # USER by name: as the container's passwd says
        uid = docker("exec", name, "id", "-u", uid)
    if gid and not gid.isdigit():
        gid = docker("exec", name, "getent", "group", gid).split(":")[2]
    status = docker("exec", name, "cat", "/proc/1/status")
    ids = {k: v.split()[0] for k, v in (line.split(":", 1) for line in status.splitlines())
           if k in ("Uid", "Gid")}
    if ids["Uid"] != uid or (gid and ids["Gid"] != gid) or ids["Uid"] == "0":
        raise CheckFailed(f"the daemon runs as uid {ids['Uid']} gid {ids['Gid']}, "
                          f"the image says USER {user}")
    log(f"the daemon runs as uid {ids['Uid']} gid {ids['Gid']} (USER {user})")


def check_stop(name, config_path):
    """docker stop sends SIGTERM; the daemon must drain and exit 0 before
    docker's grace period (drain_timeout_s + 10 s) runs out and SIGKILL comes."""
    config = docker("exec", name, "cat", config_path)
    m = re.search(r"^\s*drain_timeout_s:\s*(\d+)", config, re.M)
    drain_s = int(m.group(1)) if m else 30
    t = time.monotonic()
    docker("stop", "--time", str(drain_s + 10), name)
    took_s = time.monotonic() - t
    code = inspect(name, "{{.State.ExitCode}}")
    logs = container_logs(name)
    if code != "0" or took_s > drain_s + 5:
        raise CheckFailed(f"docker stop: exit {code} after {took_s:.1f} s (drain_timeout_s "
                          f"{drain_s}); its log:\n{logs}")
    if "SIGTERM: draining" not in logs:
        raise CheckFailed(f"docker stop: exit 0, but the log shows no drain:\n{logs}")
    log(f"docker stop -> drained, exit 0 in {took_s:.1f} s (drain_timeout_s {drain_s})")


def run_and_check(image, name):
    port = next(iter(json.loads(inspect(image, "{{json .Config.ExposedPorts}}") or "{}")), None)
    if port is None:
        raise CheckFailed("the image EXPOSEs no port")
    cmd = json.loads(inspect(image, "{{json .Config.Cmd}}") or "[]")
    config_path = cmd[cmd.index("--config") + 1] if "--config" in cmd else None
    if config_path is None:
        raise CheckFailed(f"the image's CMD {cmd} names no --config")
    extra = shlex.split(os.environ.get("DOCKER_CHECK_ARGS", ""))
    if extra:
        log(f"DOCKER_CHECK_ARGS: appending {extra} to the CMD")
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1::{port}", image, *cmd, *extra)
    published = docker("port", name, port, check=False)
    if not published:
        check_running(name)
        raise CheckFailed(f"{port} of {name} is not published")
    host_port = published.splitlines()[0].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{host_port}"
    log(f"started container {name}, {port} published on {base}")
    wait_ready(name, base)
    log("GET /readyz -> 200")
    check_classify(base)
    check_user(image, name)
    wait_healthy(name)
    check_stop(name, config_path)


def main():
    os.makedirs(WORK, exist_ok=True)
    if os.path.exists(os.path.join(WORK, "build.log")):
        os.remove(os.path.join(WORK, "build.log"))
    run_id = f"{os.getpid()}-{int(time.time())}"
    image, build_image = f"fastformerd-check:{run_id}", f"fastformerd-check-build:{run_id}"
    name = f"fastformerd-check-{run_id}"
    dockerd = None
    ok = False
    try:
        dockerd = start_dockerd()
        ensure_base_image()
        t = time.monotonic()
        # The build stage gets a tag of its own, so that removing it at the end
        # removes its layers too (the classic builder keeps them as images).
        build(build_image, target="build")
        build(image)
        size_mb = int(inspect(image, "{{.Size}}")) / 1e6
        log(f"built {image} ({size_mb:.0f} MB) in {time.monotonic() - t:.0f} s")
        run_and_check(image, name)
        ok = True
    except CheckFailed as e:
        print(f"docker-check: FAILED: {e}", file=sys.stderr, flush=True)
    finally:
        if os.environ.get("DOCKER_CHECK_KEEP") == "1":
            log(f"kept {image}, {build_image} and the container {name}")
        elif dockerd is not None or engine_answers():
            docker("rm", "-f", name, check=False)
            docker("rmi", image, build_image, check=False)
        if dockerd is not None:
            stop_dockerd(dockerd)
    if not ok:
        sys.exit(1)
    log("passed")


if __name__ == "__main__":
    main()
