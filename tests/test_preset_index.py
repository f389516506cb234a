"""presets/index.json (the built-in presets, parsed ahead) is current and gives what the YAML gives."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmcalc import presets

ROOT = Path(__file__).resolve().parent.parent


def test_the_index_is_current():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "preset_index.py"), "--check"], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("kind", ["models", "gpus"])
def test_the_index_gives_what_the_yaml_gives(kind):
    for path in sorted((presets.builtin_dir() / kind).glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert presets._indexed(path, text) == yaml.safe_load(text), path.name


def test_an_edited_preset_is_read_from_its_yaml(tmp_path, monkeypatch):
    folder = tmp_path / "presets" / "gpus"
    folder.mkdir(parents=True)
    original = (presets.builtin_dir() / "gpus" / "h100-sxm.yaml").read_text(encoding="utf-8")
    (folder / "h100-sxm.yaml").write_text(original.replace("sm_count: 132", "sm_count: 131"), encoding="utf-8")
    (tmp_path / "presets" / "index.json").write_text((presets.builtin_dir() / "index.json").read_text())
    monkeypatch.setattr(presets, "builtin_dir", lambda: tmp_path / "presets")
    monkeypatch.setattr(presets, "_INDEX", None)
    assert presets._indexed(folder / "h100-sxm.yaml", (folder / "h100-sxm.yaml").read_text()) is None
    assert presets._indexed(folder / "h100-sxm.yaml", original) is not None


def test_a_preset_name_imports_no_yaml():
    code = "import sys; from llmcalc.presets import load_model, load_gpu; load_model('llama-3.1-8b'); " \
           "load_gpu('h100-sxm'); print('yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    assert out == "False"
