import pytest
import torch
from torch import nn

from compress.algorithms.quantization.grid import rtn_quantize
from compress.errors import ScaleCompressError
from compress.formats import FORMATS, QuantizedEmbedding, QuantizedLinear, build_packed


def head(bits=4, group_size=32, vocab=100, hidden=64, seed=0):
    weight = torch.randn(vocab, hidden, generator=torch.Generator().manual_seed(seed))
    codes, scales, zeros = rtn_quantize(weight, bits, group_size)
    return QuantizedLinear.from_codes(codes, scales, zeros, bits=bits, group_size=group_size), weight


class Tied(nn.Module):
    """The shape of an HF causal LM: the base model (with the embedding) registered before the head."""

    def __init__(self, embedding, lm_head):
        super().__init__()
        self.model = nn.ModuleDict({"embed_tokens": embedding})
        self.lm_head = lm_head

    def forward(self, ids):
        return self.lm_head(self.model["embed_tokens"](ids))


def test_registered_and_lookup_equals_the_dequantized_rows():
    assert FORMATS["packed_embedding"] is QuantizedEmbedding
    dense = nn.Embedding(100, 64)
    for bits in (2, 3, 4, 8):
        packed = QuantizedEmbedding.from_embedding(dense, bits=bits, group_size=32)
        ids = torch.tensor([[0, 7, 99], [3, 3, 50]])
        assert torch.equal(packed(ids), packed.dequantize()[ids])
        error = (packed.dequantize() - dense.weight).norm() / dense.weight.norm()
        assert error < {2: 0.6, 3: 0.25, 4: 0.12, 8: 0.01}[bits]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_tied_lookup_reads_the_heads_table_in_either_layout(bits):
    table, _ = head(bits=bits)
    embedding = QuantizedEmbedding.tied(table, "lm_head")
    ids = torch.tensor([[5, 0, 99, 5]])
    before = embedding(ids)
    assert torch.equal(before[0], table.dequantize()[ids[0]])
    with torch.no_grad():
        table(torch.randn(1, 64))  # first CPU call: the head now holds the kernel layout only
    assert torch.equal(embedding(ids), before)
    assert embedding.state_dict() == {} and embedding.memory_bytes() == 0 and embedding.logical_numel() == 0


def test_tied_pair_saves_the_table_once_and_reloads_linked_also_on_meta_with_assign():
    table, _ = head(bits=4)
    model = Tied(QuantizedEmbedding.tied(table, "lm_head"), table)
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        expected = model(ids)
    state = model.state_dict()
    assert sorted(state) == ["lm_head.qweight", "lm_head.scales", "lm_head.zeros"]
    specs = {name: {"format": m.format_name, **m.spec()} for name, m in model.named_modules() if hasattr(m, "format_name")}
    for device in ("cpu", "meta"):
        with torch.device(device):
            rebuilt = Tied(build_packed(specs["model.embed_tokens"]), build_packed(specs["lm_head"]))
        rebuilt.load_state_dict(state, assign=device == "meta")
        assert rebuilt.model["embed_tokens"]._table is rebuilt.lm_head
        with torch.no_grad():
            assert torch.equal(rebuilt(ids), expected)


def test_an_unlinked_tied_embedding_says_how_to_load_it():
    embedding = QuantizedEmbedding.from_spec(QuantizedEmbedding.tied(head()[0], "lm_head").spec())
    with pytest.raises(ScaleCompressError, match="compress.load"):
        embedding(torch.tensor([1]))


def test_untied_table_round_trips_and_follows_the_model_dtype():
    packed = QuantizedEmbedding.from_embedding(nn.Embedding(100, 64), bits=4, group_size=32)
    with torch.device("meta"):
        empty = build_packed({"format": "packed_embedding", **packed.spec()})
    empty.load_state_dict(packed.state_dict(), assign=True)
    ids = torch.tensor([4, 8])
    assert torch.equal(empty(ids), packed(ids))
    packed.to(torch.bfloat16)
    assert packed(ids).dtype == torch.bfloat16 and packed.scales.dtype == torch.float16
    assert packed.spec()["dtype"] == "bfloat16"


def test_every_packed_module_names_its_kernel():
    from compress.formats import Int8Linear, SparseLinear

    dense = nn.Linear(64, 32)
    assert Int8Linear.from_linear(dense).kernel_for(1) in ("fbgemm", "int_mm")
    assert SparseLinear.from_linear(dense).kernel_for(7) == "decompress-gemm"
    assert QuantizedEmbedding.from_embedding(nn.Embedding(10, 64), bits=4, group_size=32).kernel_for(3) == "row-lookup"


def test_an_untied_packed_embedding_counts_as_embedding_parameters():
    import transformers

    from compress.model_info import count_params
    from compress.passes import RTNConfig
    import compress

    config = transformers.LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                                      num_key_value_heads=2, tie_word_embeddings=False)
    model = transformers.AutoModelForCausalLM.from_config(config)
    before = count_params(model)
    model, _ = compress.apply(model, [RTNConfig(bits=4, group_size=32, head={"bits": 8, "group_size": 32}, embedding={"bits": 4, "group_size": 32})], progress=False)
    assert count_params(model) == before
