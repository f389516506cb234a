"""`-m org/name[@revision]`: resolved through huggingface_hub, the local cache first, a download of config.json
only when it is not cached and the machine is online. A real HTTP server on 127.0.0.1 stands in for the Hub
(HF_ENDPOINT); the cache is a temporary folder that huggingface_hub itself fills, in its real layout. Nothing here
reaches the internet: every test points HF_ENDPOINT at the local server or at a closed port."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from llmcalc.core.params import total_params  # noqa: E402
from llmcalc.presets import load_model  # noqa: E402

SHA = "0123456789abcdef0123456789abcdef01234567"
TAG = "v1.0"   # a tag of the stand-in Hub, pointing to SHA as main does
TOKEN = "hf_right_token"
LLAMA_1B = {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
            "max_position_embeddings": 131072, "tie_word_embeddings": True}
# the Llama-3.2-1B architecture: 1,235,814,400 parameters (meta-llama/Llama-3.2-1B model card: 1.23B)
LLAMA_1B_PARAMS = 1_235_814_400
REPOS = {"acme/tiny-llama": LLAMA_1B, "gated-org/secret-llama": LLAMA_1B}
GATED = {"gated-org/secret-llama"}


class _Hub(BaseHTTPRequestHandler):
    """GET/HEAD /{org}/{name}/resolve/{revision}/config.json, as the Hub answers them (ETag, X-Repo-Commit)."""

    requests: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _answer(self, body: bool):
        type(self).requests.append(f"{self.command} {self.path}")
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 5 or parts[2] != "resolve":
            return self._error(404, "RepoNotFound")
        repo, revision, filename = "/".join(parts[:2]), parts[3], parts[4]
        if repo not in REPOS:
            return self._error(401, "RepoNotFound")
        if repo in GATED and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._error(403, "GatedRepo")
        if revision not in ("main", TAG, SHA):
            return self._error(404, "RevisionNotFound")
        if filename != "config.json":
            return self._error(404, "EntryNotFound")
        data = json.dumps(REPOS[repo]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"' + hashlib.sha1(data).hexdigest() + '"')
        self.send_header("X-Repo-Commit", SHA)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, status: int, code: str):
        msg = json.dumps({"error": code}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(msg)

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A local stand-in for the Hub; HF_HUB_CACHE and HF_HOME in tmp_path; no token; online."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hub.requests = []
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    yield _Hub
    server.shutdown()
    server.server_close()


def _cached_config(tmp_path: Path, repo: str) -> Path:
    return tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / SHA / "config.json"


def test_download_then_cache_then_offline(hub, cli, tmp_path, monkeypatch):
    doc = cli("flops", "-m", "acme/tiny-llama", "--seq", "128", "--json").json()
    assert doc["results"]["params"] == LLAMA_1B_PARAMS
    # huggingface_hub wrote its own layout: snapshots/<commit>/config.json and refs/main naming the commit
    assert json.loads(_cached_config(tmp_path, "acme/tiny-llama").read_text()) == LLAMA_1B
    assert (tmp_path / "hub" / "models--acme--tiny-llama" / "refs" / "main").read_text() == SHA
    asked = len(hub.requests)
    assert asked >= 1
    # cached: no request at all, online or offline, by name or by commit
    assert cli("kv", "-m", "acme/tiny-llama", "--seq", "1k", "--json").code == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert total_params(load_model("acme/tiny-llama")) == LLAMA_1B_PARAMS
    assert total_params(load_model(f"acme/tiny-llama@{SHA}")) == LLAMA_1B_PARAMS
    assert len(hub.requests) == asked


def test_unknown_id_offline_is_one_line_with_the_way_out(hub, cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = cli("kv", "-m", "meta-llama/Llama-3.1-8X", "--seq", "1k")
    assert run.code == 2 and run.stdout == ""
    line = run.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "neither a model preset nor in the Hugging Face cache" in line
    assert "huggingface-cli download meta-llama/Llama-3.1-8X config.json" in line
    assert "llama-3.1-8b" in line                      # the closest preset names
    assert hub.requests == []


def test_revision_not_in_cache_offline(hub, cli, monkeypatch):
    assert cli("kv", "-m", "acme/tiny-llama", "--seq", "1k").code == 0         # main is cached now
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = cli("kv", "-m", "acme/tiny-llama@v2.0", "--seq", "1k")
    assert run.code == 2 and "revision 'v2.0'" in run.stderr and "--revision v2.0" in run.stderr
    assert run.stderr.count("\n") == 1


def test_revision_that_does_not_exist_online(hub, cli, tmp_path):
    run = cli("kv", "-m", "acme/tiny-llama@no-such-branch", "--seq", "1k")
    assert run.code == 2 and "does not exist" in run.stderr and run.stderr.count("\n") == 1
    assert not _cached_config(tmp_path, "acme/tiny-llama").exists()


def test_gated_repo_needs_the_token(hub, cli, tmp_path, monkeypatch):
    run = cli("kv", "-m", "gated-org/secret-llama", "--seq", "1k")
    assert run.code == 2 and "gated" in run.stderr and "HF_TOKEN" in run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert not _cached_config(tmp_path, "gated-org/secret-llama").exists()   # nothing written
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    assert cli("kv", "-m", "gated-org/secret-llama", "--seq", "1k").code == 2
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert cli("kv", "-m", "gated-org/secret-llama", "--seq", "1k", "--json").json()["results"]["kv_bytes"] > 0
    assert _cached_config(tmp_path, "gated-org/secret-llama").exists()


def test_repo_that_does_not_exist_online(hub, cli):
    run = cli("kv", "-m", "acme/nothing-here", "--seq", "1k")
    assert run.code == 2 and "neither a model preset nor" in run.stderr and run.stderr.count("\n") == 1


def test_hub_unreachable_and_not_cached(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")      # the discard port: connection refused
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    run = cli("kv", "-m", "acme/tiny-llama", "--seq", "1k")
    assert run.code == 2 and "huggingface-cli download acme/tiny-llama config.json" in run.stderr
    assert run.stderr.count("\n") == 1


def test_directory_with_config_json(cli, tmp_path):
    folder = tmp_path / "Llama-3.2-1B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_1B))
    assert cli("flops", "-m", str(folder), "--seq", "128", "--json").json()["results"]["params"] == LLAMA_1B_PARAMS
    empty = tmp_path / "empty"
    empty.mkdir()
    run = cli("flops", "-m", str(empty), "--seq", "128")
    assert run.code == 2 and "no config.json" in run.stderr


def test_preset_names_never_import_huggingface_hub():
    code = ("import sys; from llmcalc.presets import load_model; load_model('llama-3.1-8b'); "
            "load_model('meta-llama/llama-3.1-8b'); print('huggingface_hub' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_huggingface_hub_installed(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)     # import fails as if it were not installed
    run = cli("kv", "-m", "acme/tiny-llama", "--seq", "1k")
    assert run.code == 2 and "pip install huggingface_hub" in run.stderr and run.stderr.count("\n") == 1


def test_cached_lookup_agrees_with_try_to_load_from_cache(hub, tmp_path):
    """llmcalc finds a cached config.json with huggingface_hub.constants alone; the library's own
    try_to_load_from_cache is the reference, on a cache that hf_hub_download filled (main, a tag, a commit)."""
    import huggingface_hub as hf

    from llmcalc.hub import cached_snapshot
    cache = str(tmp_path / "hub")
    for revision in (None, TAG, SHA):   # the endpoint given: the library read HF_ENDPOINT when first imported
        hf.hf_hub_download("acme/tiny-llama", "config.json", revision=revision, cache_dir=cache,
                           endpoint=os.environ["HF_ENDPOINT"])
    elsewhere = tmp_path / "elsewhere"           # a config.json outside the cache, named by an absolute "revision"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps(LLAMA_1B))
    cases = [(repo, revision, filename)
             for repo in ("acme/tiny-llama", "acme/not-cached", "acme/tiny--llama")
             for revision in (None, "main", TAG, SHA, SHA[:7], "v2.0", "refs/pr/1", str(elsewhere))
             for filename in ("config.json", "generation_config.json")]
    found = 0
    for repo, revision, filename in cases:
        ours = cached_snapshot(repo, revision, filename)
        try:
            theirs = hf.try_to_load_from_cache(repo, filename, cache_dir=cache, revision=revision)
        except ValueError:                                # an id the library refuses
            theirs = None
        theirs = theirs if isinstance(theirs, str) else None
        assert ours == theirs, (repo, revision, filename)
        found += ours is not None
    assert found == 4                                     # None, main, TAG, SHA: config.json of acme/tiny-llama


def test_a_cached_id_imports_no_http_client(hub, tmp_path):
    """The cached path (issue 11: at most 100 ms over a preset name) loads huggingface_hub.constants only: not
    file_download, nor the HTTP client every other module of the library imports."""
    import huggingface_hub as hf
    hf.hf_hub_download("acme/tiny-llama", "config.json", cache_dir=str(tmp_path / "hub"),
                       endpoint=os.environ["HF_ENDPOINT"])
    code = ("import sys; from llmcalc.presets import load_model; load_model('acme/tiny-llama'); "
            "load_model('acme/tiny-llama@" + SHA + "'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpx2', 'requests', 'urllib3') "
            "or m == 'huggingface_hub.file_download'))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_presets_show_takes_a_hub_id(hub, cli):
    doc = cli("presets", "show", "acme/tiny-llama", "--json").json()
    assert doc["results"]["params"] == LLAMA_1B_PARAMS and doc["results"]["params_vision"] == 0
