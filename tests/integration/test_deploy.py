"""Deployment artefacts, checked offline with the real tools: `make install`
into a temporary prefix, systemd-analyze verify and security on the installed
unit, the installed daemon under the unit's environment (sd-notify READY=1 and
periodic WATCHDOG=1), the Kubernetes/KServe manifests against their schemas,
and the Dockerfile linter."""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    args = ["make", "-s", "-C", REPO, "install", f"PREFIX={prefix}/usr",
            f"SYSCONFDIR={prefix}/etc"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return prefix


def unit_path(prefix):
    return os.path.join(prefix, "usr/lib/systemd/system/fastformerd.service")


def test_install_lays_out_everything(installed):
    for rel in ["usr/bin/fastformerd", "usr/bin/fastformer-cli", "etc/fastformerd/fastformerd.yaml",
                "usr/lib/systemd/system/fastformerd.service"]:
        assert os.path.exists(os.path.join(installed, rel)), rel
    models = os.path.join(installed, "usr/share/fastformerd/models")
    for name in os.listdir(os.path.join(REPO, "models")):
        if os.path.exists(os.path.join(REPO, "models", name, "config.json")):
            for f in ["config.json", "model.safetensors", "vocab.txt"]:
                assert os.path.exists(os.path.join(models, name, f)), f"{name}/{f}"
    conf = open(os.path.join(installed, "etc/fastformerd/fastformerd.yaml")).read()
    for path in re.findall(r"(?:path|news_catalog):\s*(\S+)", conf):
        assert os.path.exists(path), f"installed config names a missing path {path}"


def test_uninstall_removes_everything(tmp_path):
    args = ["make", "-s", "-C", REPO, f"PREFIX={tmp_path}/usr", f"SYSCONFDIR={tmp_path}/etc"]
    subprocess.run(args + ["install"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(args + ["uninstall"], check=True, stdout=subprocess.DEVNULL)
    left = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files]
    assert left == []


def test_systemd_analyze_verify(installed):
    r = subprocess.run(["systemd-analyze", "verify", unit_path(installed)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # verify prints warnings without failing: none are expected for our unit
    own = [line for line in r.stderr.splitlines() if "fastformerd.service" in line]
    assert own == [], own


def test_systemd_security_score(installed):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit_path(installed)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-500:] + r.stderr
    score = float(m.group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.0


def unit_exec(prefix):
    """The unit's ExecStart argv and Environment= settings."""
    env, argv = {}, None
    for line in open(unit_path(prefix)):
        line = line.strip()
        if line.startswith("ExecStart="):
            argv = shlex.split(line[len("ExecStart="):])
        elif line.startswith("Environment="):
            k, _, v = line[len("Environment="):].partition("=")
            env[k] = v
    return argv, env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_installed_daemon_notifies_ready_and_watchdog(installed, tmp_path):
    argv, unit_env = unit_exec(installed)
    assert os.path.exists(argv[0]), argv[0]
    # systemd gives the service its StateDirectory=; here a temporary one.
    assert "--state-dir" in argv and argv[argv.index("--state-dir") + 1] == "/var/lib/fastformerd"
    argv[argv.index("--state-dir") + 1] = str(tmp_path / "state")
    port = free_port()
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.5)
    env = {"PATH": "/usr/bin:/bin", **unit_env, "NOTIFY_SOCKET": sock_path,
           "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(argv + ["--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    messages = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                messages.extend(sock.recv(4096).decode().split("\n"))
            except socket.timeout:
                pass
            if "READY=1" in messages and \
                    messages[messages.index("READY=1") + 1:].count("WATCHDOG=1") >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert "READY=1" in messages, messages
        ready_at = messages.index("READY=1")
        assert messages[ready_at + 1:].count("WATCHDOG=1") >= 2, messages
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        sock.close()
    assert rc == 0


@pytest.fixture(scope="module")
def deploy_check_tools():
    check = os.path.join(REPO, "deploy/check")
    if not os.path.isdir(os.path.join(check, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=check, check=True)
    return check


def test_kubernetes_and_kserve_manifests_validate(deploy_check_tools):
    r = subprocess.run(["node", "validate_manifests.mjs"], cwd=deploy_check_tools,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "manifests valid" in r.stdout


def copy_deploy(deploy_check_tools, dest):
    for d in ("k8s", "k8s-single-replica", "kserve"):
        shutil.copytree(os.path.join(REPO, "deploy", d), dest / d)
    shutil.copytree(deploy_check_tools, dest / "check", symlinks=True)


@pytest.mark.parametrize("variant,old,new,message", [
    # Two replicas with a recommender on SQLite: each would keep its own catalog.
    ("k8s/configmap.yaml", '        news_store: "postgresql://"\n', "",
     'k8s: 2 replicas: every recommender needs news_store: "postgresql://..."'),
    # The password in plain text instead of from the Secret.
    ("k8s/deployment.yaml",
     "valueFrom: {secretKeyRef: {name: fastformerd-postgresql, key: password}}", 'value: "x"',
     "k8s: news_store postgresql: PGPASSWORD must come from a Secret"),
    # The state directory on the container's own (lost) filesystem.
    ("k8s-single-replica/kustomization.yaml", "mountPath: /var/lib/fastformerd",
     "mountPath: /var/lib/elsewhere",
     "k8s-single-replica: state_dir /var/lib/fastformerd must be a persistent volume"),
    ("k8s-single-replica/kustomization.yaml", "type: Recreate", "type: RollingUpdate",
     "k8s-single-replica: a SQLite state directory needs 1 replica and strategy Recreate"),
    # KServe: replicas of a recommender with a config of its own, without PostgreSQL.
    ("kserve/recommender.yaml", '        news_store: "postgresql://"\n', "",
     "kserve/recommender.yaml InferenceService: 4 replicas: every recommender needs news_store"),
])
def test_manifest_validation_rejects_a_misplaced_news_store(deploy_check_tools, tmp_path, variant,
                                                            old, new, message):
    bad = tmp_path / "deploy"
    copy_deploy(deploy_check_tools, bad)
    f = bad / variant
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new))
    r = subprocess.run(["node", "validate_manifests.mjs"], cwd=bad / "check",
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert message in r.stderr


def test_manifest_validation_rejects_a_bad_manifest(deploy_check_tools, tmp_path):
    """The validator itself must be able to fail."""
    bad = tmp_path / "deploy"
    copy_deploy(deploy_check_tools, bad)
    dep = bad / "k8s/deployment.yaml"
    dep.write_text(dep.read_text().replace("replicas: 2", 'replicas: "two"'))
    r = subprocess.run(["node", "validate_manifests.mjs"], cwd=bad / "check",
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "spec/replicas must be integer" in r.stderr


def test_dockerfile_lint(deploy_check_tools):
    r = subprocess.run([os.path.join(deploy_check_tools, "node_modules/.bin/dockerfilelint"),
                        os.path.join(REPO, "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Issues: None found" in r.stdout
