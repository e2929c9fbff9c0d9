"""TLS on the main listener (server.tls_cert_file / tls_key_file /
tls_min_version), checked with the real tools: a throwaway CA made with
`openssl` in a temporary directory, `curl --cacert`, `openssl s_client`, and
`fastformerd --healthcheck`. Covers the handshake, a wrong CA, TLS 1.0/1.1
refused, keep-alive, a model request over TLS, certificate renewal on SIGHUP
(the served serial changes) and a bad file on SIGHUP (the served one stays)."""
import calendar
import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import time

import pytest

from conftest import CLASSIFIER_DIR, DAEMON, launch

pytestmark = pytest.mark.skipif(
    not shutil.which("openssl") or not shutil.which("curl"), reason="needs openssl and curl")

MODELS = [{"name": "classifier", "path": CLASSIFIER_DIR}]


def sh(*cmd, input=None, timeout=30):
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)


def ok(*cmd):
    r = sh(*cmd)
    assert r.returncode == 0, f"{cmd}: {r.stderr}"
    return r


class Pki:
    """A CA, a second unrelated CA, and server certificates for 127.0.0.1
    and localhost (EC P-256), all in one temporary directory."""

    def __init__(self, d):
        self.d = d
        self.ca_key, self.ca = self.make_ca("ca", "fastformerd test CA")
        self.wrong_ca_key, self.wrong_ca = self.make_ca("wrong_ca", "some other CA")
        self.key = self.path("server.key")
        self.cert = self.path("server.pem")
        self.csr = self.path("server.csr")
        ok("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", self.key, "-out", self.csr, "-subj", "/CN=localhost")
        with open(self.path("ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.issue(0x1001, self.cert)

    def path(self, name):
        return os.path.join(self.d, name)

    def make_ca(self, name, cn):
        key, cert = self.path(name + ".key"), self.path(name + ".pem")
        ok("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn)
        return key, cert

    def issue(self, serial, out, csr=None):
        """Signs the server key's request (or `csr`) with the CA into `out`."""
        ok("openssl", "x509", "-req", "-in", csr or self.csr, "-CA", self.ca, "-CAkey",
           self.ca_key, "-set_serial", hex(serial), "-days", "1", "-extfile",
           self.path("ext.cnf"), "-out", out)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


def https(port, path="/healthz"):
    return f"https://127.0.0.1:{port}{path}"


def curl(*args):
    return sh("curl", "-sS", "--max-time", "20", *args)


def wait_ready_tls(d, ca):
    deadline = time.monotonic() + 60
    while True:
        r = curl("--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", https(d.port, "/readyz"))
        if r.stdout == "200":
            return
        assert d.alive() and time.monotonic() < deadline, f"not ready: {r}\n{d.log()}"
        time.sleep(0.05)


def start_tls(tmp_path, pki, name="tls", cert=None, key=None, **server):
    d = launch(str(tmp_path), models=MODELS, name=name, wait_ready=False,
               server={"tls_cert_file": cert or pki.cert, "tls_key_file": key or pki.key,
                       **server})
    wait_ready_tls(d, pki.ca)
    return d


@pytest.fixture
def tls_daemon(tmp_path, pki):
    """A TLS daemon on its own copy of the certificate (tests renew it)."""
    cert = str(tmp_path / "served.pem")
    shutil.copy(pki.cert, cert)
    d = start_tls(tmp_path, pki, cert=cert)
    d.cert_file = cert
    yield d
    assert d.stop() == 0, d.log()[-3000:]


def served_serial(port, pki):
    """The serial of the certificate the daemon serves now (fresh handshake)."""
    r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki.ca,
           "-verify_return_error", input="")
    assert r.returncode == 0, r.stderr
    x = sh("openssl", "x509", "-noout", "-serial", input=r.stdout)
    return x.stdout.strip()


def handshake(port, *flags):
    """openssl s_client with the given protocol flags: (handshake completed, output)."""
    r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{port}", *flags, input="")
    out = r.stdout + r.stderr
    done = r.returncode == 0 and "Cipher is (NONE)" not in out
    return done, out


def test_curl_with_the_ca_gets_healthz(tls_daemon, pki):
    r = curl("--cacert", pki.ca, "-i", https(tls_daemon.port))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HTTP/1.1 200"), r.stdout
    assert r.stdout.rstrip().endswith('{"status":"ok"}')
    # The name in the certificate (SAN localhost) verifies too.
    r = curl("--cacert", pki.ca, f"https://localhost:{tls_daemon.port}/healthz")
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_model_request_over_tls(tls_daemon, pki):
    r = curl("--cacert", pki.ca, "-H", "Content-Type: application/json", "-d",
             '{"inputs": ["a fine film"]}', "-w", "\n%{http_code}",
             https(tls_daemon.port, "/v1/models/classifier/classify"))
    body, code = r.stdout.rsplit("\n", 1)
    assert code == "200", r.stdout
    assert '"label"' in body


def test_wrong_ca_fails(tls_daemon, pki):
    r = curl("--cacert", pki.wrong_ca, https(tls_daemon.port))
    assert r.returncode == 60, (r.returncode, r.stderr)  # peer certificate cannot be verified
    assert r.stdout == ""


def test_plain_http_gets_no_answer(tls_daemon):
    r = curl(f"http://127.0.0.1:{tls_daemon.port}/healthz")
    assert r.returncode != 0
    assert "ok" not in r.stdout


def test_tls_1_0_and_1_1_refused(tls_daemon):
    # OpenSSL 3 refuses to even offer TLS 1.0/1.1 at its default security
    # level; SECLEVEL=0 lets it try, so the refusal is the daemon's.
    weak = ("-cipher", "DEFAULT@SECLEVEL=0")
    for proto in ("-tls1", "-tls1_1"):
        done, out = handshake(tls_daemon.port, proto, *weak)
        assert not done, f"{proto} was accepted:\n{out}"
    done, out = handshake(tls_daemon.port, "-tls1_2", *weak)
    assert done and "Protocol  : TLSv1.2" in out, out
    done, out = handshake(tls_daemon.port, "-tls1_3")
    assert done and "TLSv1.3" in out, out


def test_min_version_1_3_refuses_1_2(tmp_path, pki):
    d = start_tls(tmp_path, pki, tls_min_version='"1.3"')
    try:
        done, out = handshake(d.port, "-tls1_2")
        assert not done, out
        done, out = handshake(d.port, "-tls1_3")
        assert done, out
    finally:
        assert d.stop() == 0


def test_keep_alive(tls_daemon, pki):
    # Three requests in one curl run: one connection (and one handshake) serves them all.
    url = https(tls_daemon.port)
    r = curl("--cacert", pki.ca, "-w", " connects=%{num_connects}\n", url, url, url)
    assert r.returncode == 0, r.stderr
    assert re.findall(r"connects=(\d+)", r.stdout) == ["1", "0", "0"], r.stdout
    assert r.stdout.count('{"status":"ok"}') == 3


def test_healthcheck_option_speaks_tls(tls_daemon, tmp_path):
    args = ("--healthcheck", "--config", tls_daemon.config_path, "--listen",
            f"127.0.0.1:{tls_daemon.port}")
    r = sh(DAEMON, *args)
    assert r.returncode == 0 and r.stdout.strip() == "healthy", (r.stdout, r.stderr)
    # Without the TLS settings the probe talks plain HTTP to the TLS port and fails.
    plain = tmp_path / "plain.yaml"
    plain.write_text("server:\n  listen: 127.0.0.1:1\n")
    r = sh(DAEMON, "--healthcheck", "--config", str(plain), "--listen",
           f"127.0.0.1:{tls_daemon.port}")
    assert r.returncode == 1, (r.stdout, r.stderr)


def test_healthcheck_with_tls_settings_against_plain_http_fails(start_daemon, tls_daemon):
    plain = start_daemon(models=MODELS)
    assert "fastformerd_tls_certificate" not in plain.get("/metrics").body.decode()
    r = sh(DAEMON, "--healthcheck", "--config", tls_daemon.config_path, "--listen",
           f"127.0.0.1:{plain.port}")
    assert r.returncode == 1
    assert "TLS" in r.stderr, r.stderr


def not_after(cert_file):
    """The certificate's notAfter as Unix seconds, as openssl reads it."""
    r = ok("openssl", "x509", "-noout", "-enddate", "-in", cert_file)
    when = r.stdout.strip().split("=", 1)[1]
    return calendar.timegm(time.strptime(when, "%b %d %H:%M:%S %Y %Z"))


def expiration_metric(d, pki):
    r = curl("--cacert", pki.ca, https(d.port, "/metrics"))
    m = re.search(r"^fastformerd_tls_certificate_expiration_timestamp_seconds (\d+)$", r.stdout,
                  re.M)
    return int(m.group(1)) if m else None


def wait_log(d, pattern, since=0):
    deadline = time.monotonic() + 20
    while not re.search(pattern, d.log()[since:]):
        assert time.monotonic() < deadline, f"no {pattern!r} in:\n{d.log()[since:]}"
        time.sleep(0.05)


def test_sighup_serves_a_renewed_certificate(tls_daemon, pki, tmp_path):
    assert served_serial(tls_daemon.port, pki) == "serial=1001"
    assert expiration_metric(tls_daemon, pki) == not_after(pki.cert)
    # An open keep-alive connection from before the renewal.
    ctx = ssl.create_default_context(cafile=pki.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", tls_daemon.port, context=ctx, timeout=20)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read().strip() == b'{"status":"ok"}'

    renewed = str(tmp_path / "renewed.pem")
    time.sleep(1.1)  # a later notAfter than the first certificate's
    pki.issue(0x2002, renewed)
    os.replace(renewed, tls_daemon.cert_file)
    since = len(tls_daemon.log())
    tls_daemon.proc.send_signal(signal.SIGHUP)
    wait_log(tls_daemon, r"reload: TLS certificate renewed: .*serial 2002", since)
    assert served_serial(tls_daemon.port, pki) == "serial=2002"
    assert expiration_metric(tls_daemon, pki) == not_after(tls_daemon.cert_file) > \
        not_after(pki.cert)
    # The connection opened before the renewal keeps working.
    conn.request("GET", "/healthz")
    assert conn.getresponse().read().strip() == b'{"status":"ok"}'
    conn.close()


def test_sighup_with_a_bad_file_keeps_the_served_certificate(tls_daemon, pki, tmp_path):
    since = len(tls_daemon.log())
    with open(tls_daemon.cert_file, "w") as f:
        f.write("not a certificate\n")
    tls_daemon.proc.send_signal(signal.SIGHUP)
    wait_log(tls_daemon, r"ERROR reload: tls_cert_file .*served\.pem: no PEM certificate in it; "
             r"the served TLS certificate stays", since)
    wait_log(tls_daemon, "reload complete", since)
    assert served_serial(tls_daemon.port, pki) == "serial=1001"

    # A certificate for another key: refused as not matching, the old pair stays.
    other_key, other_csr = str(tmp_path / "other.key"), str(tmp_path / "other.csr")
    ok("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", other_key, "-out", other_csr, "-subj", "/CN=localhost")
    pki.issue(0x3003, tls_daemon.cert_file, csr=other_csr)
    since = len(tls_daemon.log())
    tls_daemon.proc.send_signal(signal.SIGHUP)
    wait_log(tls_daemon, r"ERROR reload: tls_key_file .* does not match the certificate in "
             r".*served\.pem; the served TLS certificate stays", since)
    assert served_serial(tls_daemon.port, pki) == "serial=1001"
    r = curl("--cacert", pki.ca, https(tls_daemon.port))
    assert r.stdout.strip() == '{"status":"ok"}'


@pytest.mark.parametrize("case", ["missing", "garbage", "bad_key", "key_only"])
def test_bad_tls_settings_stop_the_start(tmp_path, pki, case):
    cfg = tmp_path / "bad.yaml"
    server = {
        "missing": f"  tls_cert_file: {tmp_path}/nope.pem\n  tls_key_file: {pki.key}\n",
        "garbage": f"  tls_cert_file: {pki.key}\n  tls_key_file: {pki.key}\n",
        "bad_key": f"  tls_cert_file: {pki.cert}\n  tls_key_file: {pki.cert}\n",
        "key_only": f"  tls_key_file: {pki.key}\n",
    }[case]
    cfg.write_text(f"server:\n  listen: 127.0.0.1:0\n{server}"
                   f"models:\n  - name: c\n    path: {CLASSIFIER_DIR}\n")
    want = {
        "missing": f"tls_cert_file {tmp_path}/nope.pem: cannot read: No such file or directory",
        "garbage": f"tls_cert_file {pki.key}: no PEM certificate in it",
        "bad_key": f"tls_key_file {pki.cert}: not a PEM private key (",
        "key_only": "server.tls_cert_file and server.tls_key_file go together",
    }[case]
    r = sh(DAEMON, "--config", str(cfg))
    assert r.returncode != 0
    assert want in r.stdout + r.stderr, r.stdout + r.stderr
    r = sh(DAEMON, "--check-config", "--config", str(cfg))
    assert r.returncode != 0
    assert want in r.stdout + r.stderr, r.stdout + r.stderr


def test_readme_tls_recipe(tmp_path):
    """README's TLS example runs as written: the setup block makes the CA,
    the certificate and tls.yaml (in a copy of the checkout's layout), the
    daemon starts on that config, and the curl block prints what the README
    shows. Only the port changes (8443 -> a free one)."""
    from test_clients import assert_output, block
    from conftest import ROOT, Daemon
    os.symlink(os.path.join(ROOT, "models"), tmp_path / "models")
    setup = block("recipe", "tls-setup").replace("127.0.0.1:8443", "127.0.0.1:0")
    r = subprocess.run(["bash", "-e", "-c", setup], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    log_path = tmp_path / "tls.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([DAEMON, "--config", "tls.yaml"], cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT,
                                env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    deadline = time.monotonic() + 30
    while not (m := re.search(r"listening on https://127\.0\.0\.1:(\d+)", log_path.read_text())):
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.02)
    d = Daemon(proc, int(m.group(1)), str(log_path), str(tmp_path / "tls.yaml"))
    try:
        wait_ready_tls(d, str(tmp_path / "ca.pem"))
        calls = block("recipe", "tls").replace("localhost:8443", f"localhost:{d.port}")
        r = subprocess.run(["bash", "-c", calls], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
        assert_output(r.stdout, block("output", "tls"))
    finally:
        assert d.stop() == 0, d.log()


@pytest.mark.skipif(not shutil.which("promtool"), reason="needs promtool")
def test_metrics_over_tls_pass_promtool(tls_daemon, pki):
    r = curl("--cacert", pki.ca, https(tls_daemon.port, "/metrics"))
    assert "fastformerd_tls_certificate_expiration_timestamp_seconds" in r.stdout
    p = sh("promtool", "check", "metrics", input=r.stdout)
    assert p.returncode == 0, p.stdout + p.stderr


def test_turning_tls_off_or_changing_min_version_needs_a_restart(tls_daemon, pki):
    text = open(tls_daemon.config_path).read()
    lines = [ln for ln in text.splitlines() if "tls_cert_file" not in ln and
             "tls_key_file" not in ln]
    lines.insert(lines.index("server:") + 1, '  tls_min_version: "1.3"')
    with open(tls_daemon.config_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    since = len(tls_daemon.log())
    tls_daemon.proc.send_signal(signal.SIGHUP)
    wait_log(tls_daemon, "reload complete", since)
    log = tls_daemon.log()[since:]
    assert "reload: server.tls_cert_file changed, which needs a restart" in log, log
    assert "reload: server.tls_min_version changed, which needs a restart" in log, log
    # Still TLS, still TLS 1.2 accepted, and the metric names both settings.
    done, out = handshake(tls_daemon.port, "-tls1_2")
    assert done, out
    r = curl("--cacert", pki.ca, https(tls_daemon.port, "/metrics"))
    for key in ("server.tls_cert_file", "server.tls_min_version"):
        assert f'fastformerd_restart_required{{setting="{key}"}} 1' in r.stdout
