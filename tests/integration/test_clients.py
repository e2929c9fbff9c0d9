"""README's Clients section: each recipe (a fenced block after
`<!-- recipe NAME -->`) runs as written against the daemon serving the
default models, with only localhost:8080 replaced by the test's port, and
prints what the README shows after `<!-- output NAME -->` (floats in JSON
lines within 1e-5, as CPUs' kernels differ in the last digits)."""
import json
import math
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from test_openai_embeddings import openai_node  # noqa: F401  (the pinned npm client)

README = os.path.join(ROOT, "README.md")
DEFAULT_MODELS = [{"name": n, "path": os.path.join(ROOT, "models", n)}
                  for n in ("review-sentiment", "agnews-topic")]


def block(kind, name):
    text = open(README).read()
    m = re.search(r"<!-- %s %s -->\n```[a-z]*\n(.*?)```" % (kind, name), text, re.S)
    assert m, f"README has no {kind} block for {name}"
    return m.group(1)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from conftest import launch
    d = launch(str(tmp_path_factory.mktemp("clients")), models=DEFAULT_MODELS)
    yield d
    assert d.stop() == 0


def close(got, want):
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(close, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and \
            all(close(got[k], want[k]) for k in want)
    return got == want


def assert_output(got, want):
    got_lines, want_lines = got.rstrip("\n").split("\n"), want.rstrip("\n").split("\n")
    assert len(got_lines) == len(want_lines), got
    for g, w in zip(got_lines, want_lines):
        if w.startswith(("{", "[")):
            assert close(json.loads(g), json.loads(w)), (g, w)
        else:
            assert g == w


def run(d, name, argv_of, suffix, tmp_path, cwd=None):
    code = block("recipe", name).replace("localhost:8080", f"127.0.0.1:{d.port}")
    path = os.path.join(cwd or str(tmp_path), f"recipe_{name}{suffix}")
    with open(path, "w") as f:
        f.write(code)
    p = subprocess.run(argv_of(path), capture_output=True, text=True, timeout=120, cwd=cwd)
    assert p.returncode == 0, p.stderr
    assert_output(p.stdout, block("output", name))


def test_python_stdlib_recipe(served, tmp_path):
    run(served, "python", lambda p: ["/usr/bin/python3", p], ".py", tmp_path)


def test_python_requests_torchserve_recipe(served, tmp_path):
    run(served, "torchserve", lambda p: ["/usr/bin/python3", p], ".py", tmp_path)


def test_curl_oip_recipe(served, tmp_path):
    if not shutil.which("curl"):
        pytest.skip("no curl")
    run(served, "oip", lambda p: ["bash", "-e", p], ".sh", tmp_path)


def test_openai_client_recipe(served, tmp_path, openai_node):  # noqa: F811
    node, prefix = openai_node
    # ESM resolves "openai" from the script's folder up: run it next to node_modules
    run(served, "openai", lambda p: [node, p], ".mjs", tmp_path, cwd=prefix)


def test_recipe_check_can_fail():
    with pytest.raises(AssertionError):
        assert_output('{"a": [0.5]}\n', '{"a": [0.6]}\n')
    with pytest.raises(AssertionError):
        assert_output("positive 0.999\n", "negative 0.999\n")
