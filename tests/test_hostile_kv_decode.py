"""`kv`'s decode bytes read the embedding ROW of each sequence's token, not the whole table (issue 10).

Reference: the Hugging Face model built on the meta device (tests/reference/hf.py). Every parameter tensor is
streamed once per decode step, except an ``nn.Embedding`` that is not also the output projection (an untied
token table, GPT-2's learned position table): a lookup reads one row of it per sequence. So the weight bytes of
one step are Σ numel·2 over the streamed tensors + B·embedding_dim·2 per gathered table (bf16), and llmcalc's
``decode_bytes_with_cache − kv_bytes`` must equal that.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmcalc.core.kv import kv_report  # noqa: E402
from llmcalc.presets import load_model  # noqa: E402
from llmcalc.spec import replace  # noqa: E402
from reference import hf  # noqa: E402

pytestmark = pytest.mark.torch


def hf_decode_weight_bytes(model, batch: int) -> int:
    head = model.get_output_embeddings()
    head_weight = head.weight if head is not None else None
    gathered = {id(m.weight): m.embedding_dim for m in model.modules()
                if isinstance(m, torch.nn.Embedding) and m.weight is not head_weight}
    total = 0
    for p in model.parameters():  # tied tensors appear once
        if id(p) in gathered:
            total += batch * gathered[id(p)] * 2
        else:
            total += p.numel() * 2
    return total


@pytest.mark.parametrize("name", ["gpt2", "llama-2-7b", "qwen2.5-7b"])
@pytest.mark.parametrize("batch", [1, 16])
def test_decode_reads_one_embedding_row_per_sequence(name, batch):
    spec = replace(load_model(name), layers=2)
    model = hf.build_meta(spec, dtype=torch.bfloat16)
    r = kv_report(spec, batch, 100, kv_dtype="bf16", weight_dtype="bf16")
    ours = r["decode_bytes_with_cache"].value - r["kv_bytes"].value
    assert ours == pytest.approx(hf_decode_weight_bytes(model, batch), rel=1e-12)
    # and it is below the weights held: the untied table (or the position table) is not streamed
    assert ours < r["weights_bytes"].value
