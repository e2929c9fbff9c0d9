"""Hardening against a deliberate attacker (issue 17), each attack against the
real daemon on 127.0.0.1 over raw sockets: connection slots (half-open
clients, slowloris, per-address limits, the probe listener), strict framing,
strict ids, paths, Host and Content-Type, the API key's sources and a SIGHUP
that applies the server settings. No timed assertions: each test checks an
outcome ("answered while N sockets are held"), with generous bounds."""
import json
import os
import re
import resource
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import CLASSIFIER_DIR, DAEMON, MIND_NEWS, NEWSREC_DIR, wait_for, yaml_config

C = "/v1/models/classifier/classify"
GOOD = {"inputs": [{"input_ids": [7]}]}
ONE_MODEL = [{"name": "classifier", "path": CLASSIFIER_DIR}]
MIND = [{"name": "mind", "path": NEWSREC_DIR, "news_catalog": MIND_NEWS}]


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def exchange(port, data, timeout=10, host="127.0.0.1"):
    """Sends raw bytes, reads until the server closes (or timeout); returns
    (all bytes read, closed_by_server)."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(data)
    out = b""
    closed = False
    try:
        while True:
            got = s.recv(65536)
            if not got:
                closed = True
                break
            out += got
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    finally:
        s.close()
    return out, closed


def responses(data):
    """The status lines of every HTTP response in data."""
    return re.findall(rb"HTTP/1\.[01] (\d{3})", data)


def json_body(data):
    head, _, body = data.partition(b"\r\n\r\n")
    return head, json.loads(body)


def open_connections(d):
    m = re.search(r"^fastformerd_http_connections (\d+)", d.get("/metrics").body.decode(), re.M)
    return int(m.group(1))


def health_port(d):
    m = re.search(r"health listener \(open routes only\) on http://127\.0\.0\.1:(\d+)", d.log())
    assert m, d.log()
    return int(m.group(1))


def get(port, path, timeout=30, headers=b""):
    data, _ = exchange(port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       + headers + b"Connection: close\r\n\r\n", timeout=timeout)
    return data


# ---- connection slots ----------------------------------------------------------


@pytest.mark.parametrize("half", [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # headers cut short
    b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{\"in",  # body cut short
])
def test_a_client_that_closes_mid_request_frees_its_slot(start_daemon, half):
    # The timeouts are far away, so only noticing the FIN can free the slots.
    d = start_daemon(models=ONE_MODEL, server={"max_connections": 8, "connection_timeout_s": 600,
                                               "header_timeout_s": 600})
    for _ in range(40):  # five times the slots
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(half)
        s.close()
    data = get(d.port, "/healthz", timeout=30)
    assert responses(data) == [b"200"], data
    wait_for(lambda: open_connections(d) <= 1, "half-closed connections still held")


def test_slowloris_is_cut_at_the_header_deadline(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"max_connections": 8, "connection_timeout_s": 600,
                                               "header_timeout_s": 1})
    slow = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        slow.append(s)
    # Every slot is held; /healthz is answered once the deadline cuts them.
    data = get(d.port, "/healthz", timeout=60)
    assert responses(data) == [b"200"], data
    for s in slow:
        s.settimeout(30)
        try:
            s.sendall(b"b\r\n")  # a trickle does not extend the deadline
            assert s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass
        s.close()


def test_body_may_take_longer_than_the_header_deadline(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"header_timeout_s": 1, "connection_timeout_s": 600})
    body = json.dumps(GOOD).encode()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    s.sendall(b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    time.sleep(2.5)  # past the header deadline, well within the request timeout
    s.sendall(body)
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()


def test_health_listener_answers_while_1000_slowloris_sockets_hold_the_main_port(start_daemon):
    if raise_fd_limit(4096) < 2200:
        pytest.skip("needs 2200 file descriptors")
    d = start_daemon(models=ONE_MODEL, server={"health_listen": "127.0.0.1:0",
                                               "header_timeout_s": 600,
                                               "connection_timeout_s": 600})
    hp = health_port(d)
    held = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.setblocking(False)
            try:
                s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            except BlockingIOError:
                pass
            held.append(s)
        # The main port's 256 slots are full (the rest wait in the backlog)...
        wait_for(lambda: b"fastformerd_http_connections 25" in get(hp, "/metrics"),
                 "the main listener's slots never filled")
        # ...yet every probe is answered on the health listener.
        for path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"):
            data = get(hp, path)
            assert responses(data) == [b"200"], (path, data)
        # It serves the open routes only.
        assert responses(get(hp, "/v1/models")) == [b"404"]
        # The main port answers too: with the header deadline 10 minutes away,
        # only evicting the longest waiting connections makes room.
        assert responses(get(d.port, "/healthz")) == [b"200"]
        assert evicted(hp) >= 1
    finally:
        for s in held:
            s.close()


def evicted(port):
    m = re.search(rb"^fastformerd_http_connections_evicted_total (\d+)", get(port, "/metrics"), re.M)
    return int(m.group(1))


def open_waiting(port, n, data=b""):
    """n connections, opened in this order a few ms apart, each having sent `data`."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if data:
            s.sendall(data)
        out.append(s)
        time.sleep(0.05)
    return out


def closed_within(s, timeout):
    """True when the server closes (or resets) s within timeout seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("n_new", [1, 3])
def test_new_connections_at_the_limit_evict_the_longest_waiting_ones(start_daemon, n_new):
    # Scraped on the health listener, whose connections are its own.
    d = start_daemon(models=ONE_MODEL, server={"max_connections": 5, "health_listen": "127.0.0.1:0",
                                               "connection_timeout_s": 600,
                                               "header_timeout_s": 600})
    hp = health_port(d)
    held = open_waiting(d.port, 5, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    held[1].sendall(b"X-a: b\r\n")  # a trickle does not make it any younger
    try:
        wait_for(lambda: b"fastformerd_http_connections 6\n" in get(hp, "/metrics"),
                 "the five connections were never accepted")
        # Every slot is taken by a connection without its headers: new ones
        # are accepted (they hold their slots: their headers are not done
        # yet either), and as many of the oldest are cut.
        new = open_waiting(d.port, n_new, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held += new
        wait_for(lambda: evicted(hp) >= n_new, "no room was made")
        for s in new:
            s.sendall(b"\r\n")
            s.settimeout(10)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        for s in held[:n_new]:
            assert closed_within(s, 10), "a longest waiting connection was not cut"
        for s in held[n_new:5]:
            assert not closed_within(s, 0.3), "a younger connection was cut"
        held[4].sendall(b"\r\n")  # the younger ones are still served
        held[4].settimeout(10)
        assert held[4].recv(4096).startswith(b"HTTP/1.1 200")
        assert evicted(hp) == n_new
    finally:
        for s in held:
            s.close()


def test_connections_whose_headers_are_in_are_never_evicted(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"max_connections": 3, "health_listen": "127.0.0.1:0",
                                               "connection_timeout_s": 600,
                                               "header_timeout_s": 600})
    hp = health_port(d)
    # Three bodies being read: at the limit, a new connection waits in the
    # backlog (accepted once a slot frees), and none of them is cut.
    held = open_waiting(d.port, 3, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    try:
        wait_for(lambda: b"fastformerd_http_connections 4\n" in get(hp, "/metrics"),
                 "the three connections were never accepted")
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        extra.settimeout(1)
        with pytest.raises(socket.timeout):
            extra.recv(100)
        assert not any(closed_within(s, 0.1) for s in held)
        held.pop(0).close()
        extra.settimeout(30)
        assert extra.recv(4096).startswith(b"HTTP/1.1 200")
        extra.close()
        assert evicted(hp) == 0
    finally:
        for s in held:
            s.close()


def test_per_address_limit_keeps_slots_for_other_clients(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"max_connections": 64,
                                               "max_connections_per_ip": 8,
                                               "header_timeout_s": 600,
                                               "connection_timeout_s": 600})
    held = []
    try:
        for _ in range(200):  # from 127.0.0.2, far more than the whole limit
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", d.port))
            try:
                s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            except OSError:
                pass  # refused by the per-address limit
            held.append(s)
        assert responses(get(d.port, "/healthz")) == [b"200"]
        assert open_connections(d) <= 8 + 2
    finally:
        for s in held:
            s.close()


# ---- strict framing --------------------------------------------------------------

BODY = json.dumps(GOOD).encode()
PIPELINED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize("headers,body,message", [
    (b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(BODY),
     b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), "both Content-Length and Transfer-Encoding"),
    (b"Content-Length: 5\r\nContent-Length: %d\r\n" % len(BODY), BODY, "Content-Length is repeated"),
    (b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(BODY), len(BODY)), BODY,
     "Content-Length is repeated"),
    (b"Transfer-Encoding: gzip\r\n", b"", "only 'chunked'"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n",
     "Transfer-Encoding is repeated"),
])
def test_ambiguous_framing_is_400_json_and_closes(daemon, headers, body, message):
    data, closed = exchange(daemon.port, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/json\r\n" + headers + b"\r\n" + body
                            + PIPELINED)
    assert responses(data) == [b"400"], data  # the pipelined request is not answered
    assert closed
    head, err = json_body(data)
    assert b"Connection: close" in head
    assert err["error"]["code"] == 400 and message in err["error"]["message"], err


def test_negative_content_length_is_refused_by_the_library_and_closes(daemon):
    # libmicrohttpd answers this one itself (HTML; documented in SECURITY.md).
    data, closed = exchange(daemon.port, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Length: -1\r\n\r\n" + PIPELINED)
    assert responses(data)[0] == b"400" and b"200" not in responses(data), data
    assert closed


# ---- strict ids, paths, Host and Content-Type -------------------------------------


def catalog_items(d):
    return d.get("/v1/models/mind").json()["news_catalog_items"]


@pytest.mark.parametrize("raw_id,message", [
    (b"N%FFx", "news id: invalid UTF-8 at byte 1"),
    (b"N%C3", "news id: invalid UTF-8"),
    (b"N%01x", "news id: control character U+0001"),
    (b"N%7F", "news id: control character U+007F"),
    (b"N%C2%85", "news id: control character U+0085"),
    (b"N" * 129, "news id: expected 1 to 128 bytes, got 129"),
    (b"N%00junk", "NUL byte (%00)"),
])
def test_bad_news_id_in_put_is_400_and_nothing_is_stored(start_daemon, raw_id, message):
    d = start_daemon(models=MIND)
    before = catalog_items(d)
    body = b'{"title": "team win game"}'
    data, _ = exchange(d.port, b"PUT /v1/models/mind/news/" + raw_id + b" HTTP/1.1\r\n"
                       b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert responses(data) == [b"400"], data
    _, err = json_body(data)
    assert message in err["error"]["message"], err
    assert catalog_items(d) == before
    # A good id is stored (the test can fail).
    assert d.request("PUT", "/v1/models/mind/news/N-good", body={"title": "team win game"}).status \
        in (200, 201)
    assert catalog_items(d) == before + 1


def test_nul_in_a_model_name_is_400_not_a_shorter_name(daemon):
    data = get(daemon.port, "/v1/models/classifier%00junk")
    assert responses(data) == [b"400"], data
    assert "NUL" in json_body(data)[1]["error"]["message"]
    r = daemon.post("/v1/models/classifier%00junk/classify", GOOD)
    assert r.status == 400, r


@pytest.mark.parametrize("content_type,origin", [
    (None, b"http://evil.example"),  # a browser's Blob body: no type, but Origin
    ("text/plain", None), ("text/plain;charset=UTF-8", b"http://evil.example"),
    ("application/x-www-form-urlencoded", None), ("multipart/form-data; boundary=x", None),
    ("application/jsonx", None)])
def test_post_without_json_content_type_is_415(daemon, content_type, origin):
    headers = b"" if content_type is None else b"Content-Type: " + content_type.encode() + b"\r\n"
    if origin:
        headers += b"Origin: " + origin + b"\r\n"
    data, _ = exchange(daemon.port, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Connection: close\r\n" + headers
                       + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
    assert responses(data) == [b"415"], data
    err = json_body(data)[1]["error"]
    assert err["message"] == "Content-Type: expected 'application/json'"
    assert err["type"] == "unsupported_media_type"


def test_post_without_content_type_or_origin_is_served(daemon):
    # Not a browser (Triton's Python client sends neither header).
    data, _ = exchange(daemon.port, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
    assert responses(data) == [b"200"], data


def test_json_content_type_with_charset_is_served(daemon):
    r = daemon.post(C, GOOD, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r


@pytest.mark.parametrize("host", [b"evil.example", b"evil.example:8080", b"127.0.0.1.nip.io",
                                  b"[::2]:80"])
def test_foreign_host_is_refused_on_loopback(daemon, host):
    data, closed = exchange(daemon.port, b"GET /v1/models HTTP/1.1\r\nHost: " + host
                            + b"\r\n\r\n")
    assert responses(data) == [b"400"], data
    assert "is not allowed here" in json_body(data)[1]["error"]["message"]
    assert closed


@pytest.mark.parametrize("host", [b"localhost", b"localhost:1234", b"127.0.0.1:80", b"[::1]:9",
                                  b"LOCALHOST"])
def test_loopback_host_names_are_served(daemon, host):
    data, _ = exchange(daemon.port, b"GET /healthz HTTP/1.1\r\nHost: " + host
                       + b"\r\nConnection: close\r\n\r\n")
    assert responses(data) == [b"200"], data


def test_missing_host_is_400_in_http_1_1_but_fine_in_1_0(daemon):
    data, _ = exchange(daemon.port, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert responses(data) == [b"400"], data
    data, _ = exchange(daemon.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert responses(data) == [b"200"], data


def test_allowed_hosts_setting(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"allowed_hosts": "api.example, 127.0.0.1"})
    data, _ = exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert responses(data) == [b"400"], data
    data, _ = exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: API.example:443\r\n"
                       b"Connection: close\r\n\r\n")
    assert responses(data) == [b"200"], data
    d2 = start_daemon(models=ONE_MODEL, server={"allowed_hosts": "'*'"})
    data, _ = exchange(d2.port, b"GET /healthz HTTP/1.1\r\nHost: anything\r\n"
                       b"Connection: close\r\n\r\n")
    assert responses(data) == [b"200"], data


# ---- the API key -------------------------------------------------------------------


def test_repeated_credentials_are_400(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"api_key": "k1"})
    for headers in (b"Authorization: Bearer k1\r\nAuthorization: Bearer nope\r\n",
                    b"Authorization: Bearer nope\r\nAuthorization: Bearer k1\r\n",
                    b"X-API-Key: k1\r\nX-API-Key: k1\r\n"):
        data = get(d.port, "/v1/models", headers=headers)
        assert responses(data) == [b"400"], data
        assert "repeated" in json_body(data)[1]["error"]["message"]
    assert responses(get(d.port, "/v1/models", headers=b"Authorization: Bearer k1\r\n")) == [b"200"]


def start_fails(tmp_path, server, env=None, name="bad"):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml_config(ONE_MODEL, server))
    p = subprocess.run([DAEMON, "--config", str(cfg), "--check-config"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, **(env or {})))
    return p.returncode, p.stderr


@pytest.mark.parametrize("key,message", [
    ("'   '", "only white space"),
    ('"a\\tb"', "control character"),
    ('"k\\x7f"', "control character"),
])
def test_bad_keys_are_config_errors(tmp_path, key, message):
    rc, err = start_fails(tmp_path, {"api_key": key})
    assert rc == 1 and message in err, err


def test_api_key_file_permissions_and_contents(tmp_path, start_daemon):
    keyfile = tmp_path / "key"
    keyfile.write_text("from-file\n")
    os.chmod(keyfile, 0o644)
    rc, err = start_fails(tmp_path, {"api_key_file": str(keyfile)})
    assert rc == 1 and "mode 0644 lets other users read" in err, err
    rc, err = start_fails(tmp_path, {"api_key_file": str(keyfile), "api_key": "x"})
    assert rc == 1 and "both set" in err, err
    os.chmod(keyfile, 0o640)
    d = start_daemon(models=ONE_MODEL, server={"api_key_file": str(keyfile)})
    assert d.get("/v1/models", headers={"Authorization": "Bearer from-file"}).status == 200
    assert d.get("/v1/models").status == 401
    assert "from-file" not in d.log()


def test_environment_key_overrides_the_config(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"api_key": "in-config"},
                     env={"FASTFORMERD_API_KEY": "from-env"})
    assert d.get("/v1/models", headers={"X-API-Key": "from-env"}).status == 200
    assert d.get("/v1/models", headers={"X-API-Key": "in-config"}).status == 401


# ---- SIGHUP ------------------------------------------------------------------------


def rewrite(d, server):
    with open(d.config_path, "w") as f:
        f.write(yaml_config(ONE_MODEL, server))


def reloads(d, result="success"):
    m = re.search(r'fastformerd_reloads_total\{result="%s"\} (\d+)' % result,
                  d.get("/metrics").body.decode())
    return int(m.group(1))


def test_sighup_rotates_the_key_and_applies_server_settings(tmp_path, start_daemon):
    keyfile = tmp_path / "key"
    keyfile.write_text("old-key")
    os.chmod(keyfile, 0o600)
    d = start_daemon(models=ONE_MODEL, server={"api_key_file": str(keyfile)})
    auth_old = {"Authorization": "Bearer old-key"}
    auth_new = {"Authorization": "Bearer new-key"}
    assert d.post(C, GOOD, headers=auth_old).status == 200
    big = {"inputs": ["x" * 3000]}
    assert d.post(C, big, headers=auth_old).status == 200
    keyfile.write_text("new-key\n")
    rewrite(d, {"api_key_file": str(keyfile), "max_body_bytes": 2048})
    n = reloads(d)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(d) > n, "no reload")
    assert d.post(C, GOOD, headers=auth_old).status == 401
    assert d.post(C, GOOD, headers=auth_new).status == 200
    assert d.post(C, big, headers=auth_new).status == 413
    # Back to no key at all.
    rewrite(d, {})
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.get("/v1/models").status == 200, "the key was not dropped")


def test_sighup_names_settings_that_need_a_restart(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"max_connections": 100})
    rewrite(d, {"max_connections": 50, "health_listen": "127.0.0.1:0"})
    n = reloads(d)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(d) > n, "no reload")
    text = d.get("/metrics").body.decode()
    assert 'fastformerd_restart_required{setting="server.max_connections"} 1' in text
    assert 'fastformerd_restart_required{setting="server.health_listen"} 1' in text
    assert 'fastformerd_restart_required{setting="server.listen"} 0' in text
    assert 'fastformerd_restart_required{setting="batching.workers"} 0' in text
    log = d.log()
    assert "server.max_connections changed, which needs a restart" in log
    assert "server.health_listen changed, which needs a restart" in log
    assert d.get("/healthz").status == 200  # still on the old address


def thread_nice(pid, name):
    """The nice values of the process's threads called `name`."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            stat_line = f.read()
        if stat_line[stat_line.index("(") + 1:stat_line.rindex(")")] == name:
            out.append(int(stat_line[stat_line.rindex(")") + 2:].split()[16]))
    return out


@pytest.mark.parametrize("nice", [None, 0, 7, 19])
def test_parse_threads_run_below_the_http_thread(start_daemon, nice):
    server = {"parse_threads": 3}
    if nice is not None:
        server["parse_threads_nice"] = nice
    d = start_daemon(models=ONE_MODEL, server=server)
    base = os.getpriority(os.PRIO_PROCESS, d.proc.pid)
    want = min(19, base + (10 if nice is None else nice))
    assert thread_nice(d.proc.pid, "ff-parse") == [want] * 3
    assert thread_nice(d.proc.pid, "MHD-single") == [base]
    assert d.post(C, padded(GOOD, 8192)).status == 200  # and they parse
    # A reload cannot lower it again (an unprivileged process may not): it
    # names the key instead.
    rewrite(d, {**server, "parse_threads_nice": 3})
    n = reloads(d)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(d) > n, "no reload")
    text = d.get("/metrics").body.decode()
    assert 'fastformerd_restart_required{setting="server.parse_threads_nice"} 1' in text
    assert thread_nice(d.proc.pid, "ff-parse") == [want] * 3


def padded(body, n_bytes):
    """body as JSON, padded with whitespace (which JSON ignores) to n_bytes."""
    text = json.dumps(body)
    return text + " " * (n_bytes - len(text))


@pytest.mark.parametrize("body", [
    GOOD,
    {"inputs": [{"input_ids": [7, 99999]}]},  # 400: an id past the vocabulary
    {"inputs": [{"input_ids": [7]}], "extra": 1},  # 400: an unknown key
])
def test_small_bodies_on_the_http_thread_answer_as_big_ones_on_the_parse_threads(start_daemon,
                                                                                  body):
    # Bodies of up to 4096 bytes are parsed on the HTTP thread (one hand-off
    # less), bigger ones on the parse threads; the same request padded past
    # that answers the same, errors included.
    d = start_daemon(models=ONE_MODEL, server={"parse_threads": 2})
    small, big = d.post(C, padded(body, 4096)), d.post(C, padded(body, 4097))
    assert small.status == big.status
    assert json.loads(small.body) == json.loads(big.body)
    assert small.status == (200 if body is GOOD else 400)


def test_no_sighup_is_dropped(start_daemon):
    d = start_daemon(models=ONE_MODEL, server={"api_key": "k0"})
    n = reloads(d)
    for i in range(1, 31):
        rewrite(d, {"api_key": f"k{i}"})
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.005)
    # The last config is the one in force, whatever the loads overlapped.
    wait_for(lambda: d.get("/v1/models", headers={"X-API-Key": "k30"}).status == 200,
             "the last SIGHUP's key never took effect")
    wait_for(lambda: reloads(d) > n, "no reload")
    assert "SIGHUP ignored" not in d.log()


# ---- the memory estimate follows bodies and catalog rows ------------------------------


def memory_metric(d):
    m = re.search(r"^fastformerd_memory_estimate_bytes (\d+)$", d.get("/metrics").body.decode(),
                  re.M)
    return int(m.group(1))


def test_memory_estimate_counts_bodies_in_flight_and_catalog_growth(start_daemon):
    d = start_daemon(models=MIND, server={"max_body_bytes": 4 << 20})
    base = memory_metric(d)
    assert base > 0
    # 8 uploads of 2 MB, held open before their last byte.
    held = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", d.port))
        n = 2 << 20
        s.sendall(b"PUT /v1/models/mind/news/X HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % n)
        s.sendall(b" " * (n - 1))
        held.append(s)
    wait_for(lambda: memory_metric(d) >= base + 8 * (2 << 20), "bodies in flight not counted")
    for s in held:
        s.close()
    wait_for(lambda: memory_metric(d) < base + (1 << 20), "released bodies still counted")
    # 2,000 new catalog rows.
    for i in range(2000):
        r = d.request("PUT", f"/v1/models/mind/news/grow{i}", body={"title": "team win game"})
        assert r.status in (200, 201), r
    grown = memory_metric(d)
    assert grown > base + 2000 * 32 * 4, (base, grown)  # at least each row's vector (dim 32)
