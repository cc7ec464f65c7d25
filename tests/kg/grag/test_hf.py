"""`graphlearn.kg.grag.hf`: the graph soft-prompt encoder and the Hugging Face generator,
on a tiny randomly initialised Llama and a byte-level BPE tokenizer built offline."""

import threading

import pytest
import torch
from graphlearn.kg.grag import (
    BaseGenerator,
    Generator,
    GraphIndex,
    HashingEncoder,
    SoftPruner,
    TextGraph,
    retrieve,
)
from graphlearn.kg.grag.hf import GraphPromptEncoder, SoftPromptGenerator

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    InvalidArgumentError,
    ShapeError,
)

transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("tokenizers")

TRIPLES = [("alice", "knows", "bob"), ("bob", "lives in", "paris"),
           ("carol", "parent of", "alice"), ("alice", "likes", "paris"),
           ("paris", "capital of", "france"), ("rome", "capital of", "italy")]
DIM = 32
SMALL = {"in_channels": DIM, "hidden_channels": 16, "heads": 2, "projector_channels": 32}


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=["</s>", "<s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    corpus = [" ".join(t) for t in TRIPLES] + ["Question: where does bob live?\nAnswer: paris",
                                               "who is the parent of alice? carol"]
    tok.train_from_iterator(corpus * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                       special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random Llama and its tokenizer, saved as a local model folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=1, eos_token_id=0,
                         pad_token_id=2, initializer_range=0.2)
    # at the usual initializer_range=0.02 a random LM's attention is near uniform and its
    # RMSNorm discards a soft token's scale, so a frozen tiny LM hardly reacts to the prompt
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def fresh_model(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)


@pytest.fixture(scope="module")
def toy():
    index = GraphIndex.build(TextGraph.from_triples(TRIPLES), HashingEncoder(DIM))
    return index, retrieve(index, "where does bob live?", k=2), retrieve(
        index, "who is the parent of alice?", k=1)


def make(model_dir, seed=0, **kwargs):
    torch.manual_seed(seed)
    return SoftPromptGenerator(model_dir, **{**SMALL, **kwargs})


# ---------------------------------------------------------------------------- encoder
def test_encoder_shapes_gates_and_empty_graph(toy):
    _, r, r2 = toy
    torch.manual_seed(0)
    enc = GraphPromptEncoder(DIM, 24, hidden_channels=16, heads=2, num_prompt_tokens=3).eval()
    assert repr(enc) == ("GraphPromptEncoder(32, 24, hidden_channels=16, num_layers=2, "
                         "heads=2, num_prompt_tokens=3)")
    out = enc.encode([r, r2, None])
    assert out.shape == (3, 3, 24) and torch.isfinite(out).all()
    # batching is a disjoint union: each row equals the graph encoded alone
    torch.testing.assert_close(out[0], enc.encode([r])[0])
    torch.testing.assert_close(out[1], enc.encode([r2])[0])
    # no graph / a graph with no nodes: the pooled vector is zero, the question still counts
    empty = r.replace(graph=TextGraph([], torch.zeros(0, 2, dtype=torch.long), []),
                      node_embeddings=torch.zeros(0, DIM), edge_embeddings=torch.zeros(0, DIM))
    expected = enc.projector(torch.cat([torch.zeros(16), r.question_embedding])).view(3, 24)
    torch.testing.assert_close(enc.encode([empty])[0], expected)
    torch.testing.assert_close(out[2], enc.projector(torch.zeros(16 + DIM)).view(3, 24))
    # gates scale the features: all-ones gates change nothing, other gates do
    n, m = r.num_nodes, r.num_edges
    ones = r.replace(node_gates=torch.ones(n), edge_gates=torch.ones(m))
    torch.testing.assert_close(enc.encode([ones]), enc.encode([r]))
    halved = r.replace(node_gates=torch.full((n,), 0.5), edge_gates=torch.full((m,), 0.5))
    assert not torch.allclose(enc.encode([halved]), enc.encode([r]))
    with pytest.raises(ShapeError, match=r"\(num_nodes, 32\)"):
        enc(torch.zeros(2, 8), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 8))
    with pytest.raises(InvalidArgumentError, match="num_prompt_tokens"):
        GraphPromptEncoder(DIM, 24, num_prompt_tokens=0)


# ---------------------------------------------------------------------------- generation
def test_generate_end_to_end_from_path(model_dir, toy):
    index, r, _ = toy
    gen = make(model_dir, num_prompt_tokens=2)
    assert isinstance(gen, Generator) and isinstance(gen, BaseGenerator)
    assert repr(gen) == (f"SoftPromptGenerator({str(model_dir)!r}, in_channels=32, "
                         f"num_prompt_tokens=2, lora=False)")
    answer = gen.generate("where does bob live?", r, max_new_tokens=6)
    assert isinstance(answer, str)
    tokens = list(gen._greedy("where does bob live?", r, 6))
    assert 0 < len(tokens) <= 6 and answer == gen._decode(tokens)
    assert gen.generate("where does bob live?", r, max_new_tokens=6) == answer  # greedy
    # pruned subgraphs (gates) and no retrieval at all run too
    torch.manual_seed(0)
    pruned = SoftPruner(DIM, hidden_channels=8).prune(r, threshold=0.0)
    assert pruned.node_gates is not None
    assert isinstance(gen.generate("where does bob live?", pruned, max_new_tokens=4), str)
    assert isinstance(gen.generate("where does bob live?", None, max_new_tokens=4), str)


def test_bfloat16_lm_with_float32_encoder(model_dir, toy):
    _, r, _ = toy
    gen = make(model_dir, dtype="bfloat16", max_new_tokens=3)
    assert gen.lm.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in gen.encoder.parameters())
    assert len(list(gen._greedy("where does bob live?", r, gen.max_new_tokens))) <= 3
    assert isinstance(gen.generate("where does bob live?", r), str)
    loss = gen.compute_loss(examples(toy))
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32
               for p in gen.encoder.parameters())


def test_stream_equals_generate(model_dir, toy):
    _, r, r2 = toy
    gen = make(model_dir)
    for question, retrieval in [("where does bob live?", r), ("who is carol?", r2)]:
        pieces = list(gen.stream(question, retrieval, max_new_tokens=10))
        assert len(pieces) > 1 and all(pieces)
        assert "".join(pieces) == gen.generate(question, retrieval, max_new_tokens=10)
    # the cached greedy loop agrees with recomputing the whole sequence each step
    prompt_embeds, mask, _ = gen._batch([("where does bob live?", r, None)])
    tokens = []
    with torch.no_grad():
        for _ in range(5):
            ids = torch.tensor([tokens], dtype=torch.long)
            x = torch.cat([prompt_embeds, gen._embed(ids)], dim=1)
            tokens.append(int(gen.lm(inputs_embeds=x).logits[0, -1].argmax()))
    assert list(gen._greedy("where does bob live?", r, 5)) == tokens


def test_stops_at_eos(model_dir, toy):
    _, r, _ = toy
    model = fresh_model(model_dir)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit ties: argmax is token 0, "</s>"
    gen = SoftPromptGenerator(model, _tokenizer(), **SMALL)
    assert gen.stop_token_ids == {0}
    assert gen.generate("where does bob live?", r) == ""
    assert list(gen.stream("where does bob live?", r)) == []


def test_graph_reaches_the_lm(model_dir, toy):
    _, r, _ = toy
    gen = make(model_dir)
    question = "where does bob live?"
    base = gen.logits(question, r)
    assert base.shape == (len(gen.tokenizer),)
    # same text prompt (same graph, same description), other embeddings: other logits
    g = torch.Generator().manual_seed(1)
    other = r.replace(node_embeddings=torch.randn(r.node_embeddings.shape, generator=g))
    assert build_prompt_equal(gen, question, r, other)
    assert not torch.allclose(gen.logits(question, other), base)
    # the gates reach it too
    gated = r.replace(node_gates=torch.full((r.num_nodes,), 0.1),
                      edge_gates=torch.full((r.num_edges,), 0.1))
    assert not torch.allclose(gen.logits(question, gated), base)


def build_prompt_equal(gen, question, a, b):
    return gen._prompt_ids(question, a) == gen._prompt_ids(question, b)


def test_concurrent_generation_is_consistent(model_dir, toy):
    _, r, r2 = toy
    gen = make(model_dir)
    jobs = [("where does bob live?", r), ("who is carol?", r2)] * 2
    expected = [gen.generate(q, x, max_new_tokens=8) for q, x in jobs]
    results = [None] * len(jobs)

    def work(i):
        results[i] = "".join(gen.stream(*jobs[i], max_new_tokens=8))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


# ---------------------------------------------------------------------------- training
def examples(toy):
    _, r, r2 = toy
    return [("where does bob live?", r, " paris"), ("who is the parent of alice?", r2, " carol")]


def test_frozen_lm_only_encoder_gets_gradients(model_dir, toy):
    gen = make(model_dir)
    assert all(not p.requires_grad for p in gen.lm.parameters())
    assert {id(p) for p in gen.trainable_parameters()} == {id(p) for p in
                                                          gen.encoder.parameters()}
    loss = gen.compute_loss(examples(toy))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in gen.lm.parameters())
    grads = [p.grad for p in gen.encoder.parameters()]
    assert all(gr is not None for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0
    # the labels cover the answer and EOS only
    _, _, labels = gen._batch([("where does bob live?", toy[1], " paris")])
    answer = gen.tokenizer(" paris", add_special_tokens=False)["input_ids"] + [0]
    assert labels[labels != -100].tolist() == answer


def test_fit_lowers_loss(model_dir, toy):
    """The LM frozen, the soft prompt alone lowers the answers' loss."""
    gen = make(model_dir, num_prompt_tokens=4)
    data = examples(toy)
    before = gen.loss(data)
    history = gen.fit(data, epochs=30, lr=1e-2, batch_size=2, progress=False)
    assert len(history) == 30
    assert history[-1] < 0.7 * history[0]
    assert gen.loss(data) < 0.7 * before
    assert not gen.encoder.training and not gen.lm.training


def test_lora_trains_adapters_and_leaves_base_weights(model_dir, toy):
    gen = make(model_dir, lora={"r": 4})
    assert gen.lora and repr(gen).endswith("lora=True)")
    frozen = {n: p.detach().clone() for n, p in gen.lm.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in gen.lm.named_parameters() if p.requires_grad}
    assert adapters and all("lora_" in n for n in adapters)
    assert any("q_proj" in n for n in adapters) and any("v_proj" in n for n in adapters)
    data = examples(toy)
    before = gen.loss(data)
    history = gen.fit(data, epochs=10, lr=1e-2, batch_size=2)
    assert history[-1] < history[0] and gen.loss(data) < before
    for n, p in gen.lm.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert any(not torch.equal(dict(gen.lm.named_parameters())[n], v)
               for n, v in adapters.items() if "lora_B" in n)


def test_fit_then_answers(model_dir, toy):
    """Trained on two questions, the generator answers each with its own text and stops."""
    gen = make(model_dir, lora={"r": 8})
    data = examples(toy)
    gen.fit(data, epochs=40, lr=1e-2, batch_size=2, progress=False)
    for question, retrieval, answer in data:
        assert gen.generate(question, retrieval, max_new_tokens=8) == answer


# ---------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("lora", [False, True])
def test_save_load_round_trip(model_dir, toy, tmp_path, lora):
    _, r, _ = toy
    gen = make(model_dir, num_prompt_tokens=2, lora={"r": 4} if lora else False,
               template="Facts:\n{description}\nQ: {question}\nA:", max_new_tokens=5)
    gen.fit(examples(toy), epochs=2, lr=1e-2, batch_size=2)
    folder = gen.save(tmp_path / "gen")
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"generator.json", "graph_encoder.safetensors"} <= names
    assert ("adapter/adapter_model.safetensors" in names) == lora
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    question = "where does bob live?"
    expected = gen.logits(question, r)
    # the base model from the saved path, and a model object with its tokenizer
    for loaded in (SoftPromptGenerator.load(folder),
                   SoftPromptGenerator.load(folder, fresh_model(model_dir), _tokenizer())):
        assert loaded.lora == lora and loaded.num_prompt_tokens == 2
        assert loaded.template == gen.template and loaded.max_new_tokens == 5
        torch.testing.assert_close(loaded.logits(question, r), expected, rtol=0, atol=1e-6)
        assert loaded.generate(question, r) == gen.generate(question, r)


def test_load_errors(model_dir, tmp_path):
    with pytest.raises(DataNotFoundError, match="no SoftPromptGenerator folder"):
        SoftPromptGenerator.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="generator.json"):
        SoftPromptGenerator.load(tmp_path / "empty")
    folder = make(model_dir).save(tmp_path / "gen")
    (folder / "graph_encoder.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataFormatError, match="corrupt"):
        SoftPromptGenerator.load(folder)
    (folder / "generator.json").write_text("{}")
    with pytest.raises(DataFormatError, match="not a SoftPromptGenerator config"):
        SoftPromptGenerator.load(folder)


# ---------------------------------------------------------------------------- errors
def test_errors(model_dir, toy, tmp_path):
    index, r, _ = toy
    with pytest.raises(DataNotFoundError, match="huggingface-cli download .* --local-dir"):
        SoftPromptGenerator(tmp_path / "no-model", in_channels=DIM)
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(DataNotFoundError, match="no config.json"):
        SoftPromptGenerator(tmp_path / "not-a-model", in_channels=DIM)
    with pytest.raises(InvalidArgumentError, match="needs its tokenizer"):
        SoftPromptGenerator(fresh_model(model_dir), in_channels=DIM)
    with pytest.raises(DTypeError, match="local model folder"):
        SoftPromptGenerator(42, in_channels=DIM)
    with pytest.raises(InvalidArgumentError, match=r"\{question\}"):
        make(model_dir, template="no placeholders")
    with pytest.raises(DTypeError, match="dtype"):
        make(model_dir, dtype="float33")
    with pytest.raises(InvalidArgumentError, match="invalid lora settings"):
        make(model_dir, lora={"rank": 4})
    gen = make(model_dir, in_channels=16)
    with pytest.raises(ShapeError, match="in_channels=32"):
        gen.generate("where does bob live?", r)
    gen = make(model_dir)
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        gen.generate("  ", r)
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        list(gen.stream("", r))
    with pytest.raises(InvalidArgumentError, match="max_new_tokens"):
        gen.generate("where?", r, max_new_tokens=0)
    with pytest.raises(DTypeError, match="Retrieval"):
        gen.generate("where?", "some text")
    with pytest.raises(InvalidArgumentError, match="no answer text"):
        gen.fit([("where?", r, "")])
    with pytest.raises(DTypeError, match=r"\(question, retrieval, answer\)"):
        gen.fit([42])
    with pytest.raises(InvalidArgumentError, match="no training examples"):
        gen.fit([])
