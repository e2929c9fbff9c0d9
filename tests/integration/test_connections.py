"""Connection-level limits of the HTTP front: the connection limit, the
idle/slow-client timeout (slowloris) that must not starve other clients,
huge headers, truncated bodies, and the open-connections gauge."""
import re
import socket
import time

from conftest import CLASSIFIER_DIR

C = "/v1/models/classifier/classify"
GOOD = {"inputs": [{"input_ids": [7]}]}


def closed_by_peer(s, timeout=10):
    """True when the server closes (or resets) the connection within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def reading_a_body(port):
    """A connection whose headers are in and whose body is still coming: it
    holds its slot (only connections still waiting for headers are evicted at
    the limit; test_attacks.py covers those)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    return s


def test_connection_limit(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                     server={"max_connections": 3})
    held = [reading_a_body(d.port) for _ in range(3)]
    try:
        # The gauge sees them once the HTTP thread has accepted them; the
        # scrape itself needs a connection, so wait with one held less.
        held.pop().close()
        deadline = time.monotonic() + 10
        while "fastformerd_http_connections 3" not in d.get("/metrics").body.decode():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        held.append(reading_a_body(d.port))
        time.sleep(0.1)  # let the HTTP thread accept the third
        # Over the limit, libmicrohttpd stops accepting: the new connection
        # waits in the kernel's backlog and is served once a slot frees.
        extra = socket.create_connection(("127.0.0.1", d.port))
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        extra.settimeout(0.5)
        try:
            early = extra.recv(100)
        except socket.timeout:
            early = None
        assert early is None, f"a connection over the limit was served: {early!r}"
        held.pop().close()
        extra.settimeout(10)
        data = b""
        while True:
            got = extra.recv(4096)
            if not got:
                break
            data += got
        assert data.startswith(b"HTTP/1.1 200"), data
        extra.close()
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while True:  # the slots free up once the held connections are closed
        try:
            if d.post(C, GOOD).status == 200:
                break
        except ConnectionError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.01)
    while True:  # closed connections leave the gauge once the server notices
        m = re.search(r"fastformerd_http_connections (\d+)", d.get("/metrics").body.decode())
        if m and int(m.group(1)) <= 1:
            break
        assert time.monotonic() < deadline, m
        time.sleep(0.01)


def test_slow_client_is_cut_off_without_starving_others(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                     server={"connection_timeout_s": 1})
    slow = socket.create_connection(("127.0.0.1", d.port))
    slow.sendall(b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    # Others are served while the slow one dribbles.
    for _ in range(5):
        assert d.post(C, GOOD).status == 200
    assert closed_by_peer(slow, timeout=10), "the slow client was never cut off"
    slow.close()
    assert d.post(C, GOOD).status == 200


def test_truncated_body_does_not_hurt(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}])
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n"
                  b'{"inputs": [')
        s.close()
    assert d.post(C, GOOD).status == 200
    assert d.alive()


def test_huge_header_is_refused(daemon):
    s = socket.create_connection(("127.0.0.1", daemon.port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    s.settimeout(10)
    data = b""
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            data += got
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    # libmicrohttpd answers 431 itself (its own body, not our JSON) or closes.
    assert data == b"" or data.startswith(b"HTTP/1.1 431"), data[:200]
    assert daemon.get("/healthz").status == 200
