"""Fidelity to the released LaSER checkpoints (Alibaba-NLP/LaSER-Qwen3-*): inputs formatted exactly as the authors
train and evaluate them, and vectors equal to an independent reimplementation of their rollout.

Offline: a small word-level tokenizer carrying Qwen3's own chat template, and a tiny random Qwen3 built from a config.
The reference code below follows ignorejjj/LaSER: ``src/tevatron/retriever/collator.py`` (``_add_chat_template`` and
the tokenizer call), ``dataset.py`` (``_format_query_with_prompt``) and ``modeling/laser.py`` (``encode_query``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from laser_rag import backbones
from laser_rag.config import CONFIG_NAME, RELEASED_PRESET, THINK_SUFFIX, LaSERConfig, released_preset
from laser_rag.encoders import LaSEREncoder
from laser_rag.errors import TruncationWarning

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>"]
WORDS = ("user assistant system Instruct Query Given a question post retrieve relevant passages that help answer it "
         "the what is why how rayleigh scattering sky blue short wavelengths scatter more light of sun in air "
         "molecules and are by to").split()
PUNCTUATION = [":", "?", ".", ",", " ", "\n", "\n\n"]
VOCAB = [*SPECIAL, *ADDED, "[UNK]", "<s>", *WORDS, *PUNCTUATION]
V = {piece: index for index, piece in enumerate(VOCAB)}

INSTRUCTION = "Given a question, retrieve relevant passages that help answer it"
QUERIES = [
    "what is rayleigh scattering?",
    "why is the sky blue?",
    "why?",
    "how are short wavelengths of the light of the sun in air scattered by air molecules and why is the sky blue?",
]
PASSAGES = [
    "rayleigh scattering is the scattering of light by air molecules.",
    "short wavelengths scatter more.",
    "the sky is blue.",
]


def word_tokenizer(chat_template: str, bos: bool = False):
    """A fast tokenizer with a fixed vocabulary (so token ids can be written down) and Qwen3's special tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(V, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\w+|[^\w\s]+|\s+"), behavior="isolated")
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in [*SPECIAL, "<s>"]])
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in ADDED])
    extra = {}
    if bos:  # a Llama-style tokenizer: BOS added by the post-processor and written by the chat template too
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", V["<s>"])])
        extra["bos_token"] = "<s>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        padding_side="left", **extra)
    tokenizer.chat_template = chat_template
    return tokenizer


def tiny_qwen3(dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM, Qwen3Config

    config = Qwen3Config(vocab_size=len(VOCAB), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
                         tie_word_embeddings=True, initializer_range=0.1)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


@pytest.fixture(scope="module")
def qwen3_tokenizer():
    return word_tokenizer(QWEN3_CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def released(qwen3_tokenizer):
    """A LaSER encoder in the released format on a tiny random Qwen3."""
    config = LaSERConfig(base_model="tiny-qwen3", query_instruction=INSTRUCTION, **RELEASED_PRESET)
    return LaSEREncoder(tiny_qwen3(), qwen3_tokenizer, config, base_id="test:tiny-qwen3")


# --------------------------------------------------------------------------------------------------- the reference


def authors_query(prompt: str, query: str) -> str:
    """dataset.py: ``_format_query_with_prompt("Instruct: {instruct}\\nQuery: {query}", prompt, query)``."""
    return "Instruct: {instruct}\nQuery: {query}".format(instruct=prompt, query=query)


def authors_inputs(tokenizer, texts: list[str], max_len: int = 512):
    """collator.py with ``add_chat_template``: one user turn, generation prompt, the empty think block; tokenised
    with ``add_special_tokens=True``, truncated at ``max_len``, no EOS, left-padded to a multiple of 16."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                           add_generation_prompt=True) + "<think>\n\n</think>\n\n" for t in texts]
    collated = tokenizer(texts, padding=False, truncation=True, max_length=max_len, return_attention_mask=False,
                         return_token_type_ids=False, add_special_tokens=True)
    return tokenizer.pad(collated, padding=True, pad_to_multiple_of=16, return_attention_mask=True,
                         return_tensors="pt")


def authors_encode(model, batch, num_thinking_steps: int, eos_token_id: int) -> torch.Tensor:
    """modeling/laser.py ``LaSERModel.encode_query``: K-1 EOS placeholders appended, the full causal LM run with a
    KV cache, each placeholder's input embedding replaced by the soft token ``softmax(logits) @ E`` step by step;
    the mean of the K last-layer states at the last position, L2-normalised."""
    steps = num_thinking_steps - 1
    input_ids, attention_mask = batch["input_ids"].clone(), batch["attention_mask"].clone()
    rows = input_ids.shape[0]
    if steps > 0:
        input_ids = torch.cat([input_ids, torch.full((rows, steps), eos_token_id, dtype=torch.long)], dim=1)
        attention_mask = torch.cat([attention_mask, torch.ones((rows, steps), dtype=torch.long)], dim=1)
    max_query_length = input_ids.shape[1] - steps
    embeddings = model.get_input_embeddings()(input_ids)
    table = model.get_input_embeddings().weight
    past, states = None, []
    for step in range(steps):
        use = max_query_length + step
        if past is None:
            out = model(inputs_embeds=embeddings[:, :use], attention_mask=attention_mask[:, :use],
                        output_hidden_states=True, use_cache=True, return_dict=True)
        else:
            out = model(inputs_embeds=embeddings[:, use - 1:use], attention_mask=attention_mask[:, :use],
                        output_hidden_states=True, past_key_values=past, use_cache=True, return_dict=True)
        states.append(out.hidden_states[-1][:, -1, :])
        thought = torch.matmul(F.softmax(out.logits[:, -1, :], dim=-1), table)
        past = out.past_key_values
        embeddings = torch.cat([embeddings[:, :use], thought.unsqueeze(1), embeddings[:, use + 1:]], dim=1)
    if past is None:
        out = model(inputs_embeds=embeddings, attention_mask=attention_mask, use_cache=True,
                    output_hidden_states=True, return_dict=True)
    else:
        out = model(inputs_embeds=embeddings[:, -1:], attention_mask=attention_mask, output_hidden_states=True,
                    past_key_values=past, return_dict=True, use_cache=True)
    states.append(out.hidden_states[-1][:, -1, :])
    return F.normalize(torch.stack(states, dim=1).mean(dim=1), p=2, dim=-1)


# --------------------------------------------------------------------------------------------------- (a) the format


def test_query_and_passage_prompts_and_ids_under_qwen3s_chat_template(released, qwen3_tokenizer):
    query = released.render("why is the sky blue?", "query")
    assert query == ("<|im_start|>user\nInstruct: Given a question, retrieve relevant passages that help answer it\n"
                     "Query: why is the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    passage = released.render("the sky is blue.", "document")
    assert passage == "<|im_start|>user\nthe sky is blue.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    closing = ["<|im_end|>", "\n", "<|im_start|>", "assistant", "\n", "<think>", "\n\n", "</think>", "\n\n"]
    expected_query = ["<|im_start|>", "user", "\n", "Instruct", ":", " ", "Given", " ", "a", " ", "question", ",", " ",
                      "retrieve", " ", "relevant", " ", "passages", " ", "that", " ", "help", " ", "answer", " ", "it",
                      "\n", "Query", ":", " ", "why", " ", "is", " ", "the", " ", "sky", " ", "blue", "?", *closing]
    expected_passage = ["<|im_start|>", "user", "\n", "the", " ", "sky", " ", "is", " ", "blue", ".", *closing]
    (query_ids,), _ = released.tokenize(["why is the sky blue?"], "query")
    (passage_ids,), _ = released.tokenize(["the sky is blue."], "document")
    assert query_ids == [V[p] for p in expected_query]
    assert passage_ids == [V[p] for p in expected_passage]
    # the authors' collator gives the same string and the same ids
    authors = authors_inputs(qwen3_tokenizer, [authors_query(INSTRUCTION, "why is the sky blue?"), "the sky is blue."])
    rows = [row[mask.bool()].tolist() for row, mask in zip(authors["input_ids"], authors["attention_mask"])]
    assert rows == [query_ids, passage_ids]


def test_instruction_per_call_and_per_encoder(released):
    per_call = released.render("why?", "query", instruction="Given a post, retrieve relevant passages")
    assert "Instruct: Given a post, retrieve relevant passages\nQuery: why?<|im_end|>" in per_call
    configured = released.with_config(query_instruction="Given a post, retrieve relevant passages")
    assert configured.render("why?", "query") == per_call
    np.testing.assert_allclose(released.encode_queries("why?", instruction="Given a post, retrieve relevant passages"),
                               configured.encode_queries("why?"), atol=1e-6)
    assert not np.allclose(released.encode_queries("why?"), configured.encode_queries("why?"))


def test_smollm2s_chatml_template_as_a_second_case(encoder):
    """The default model's own tokenizer and ChatML template (which adds a default system turn)."""
    chat = encoder.with_config(chat_template=True, assistant_suffix=THINK_SUFFIX)
    tokenizer = chat.tokenizer
    prompt = chat.render("why is the sky blue?", "query")
    assert prompt == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n<|im_start|>user\nInstruct: " + encoder.config.query_instruction + "\nQuery: why is "
                      "the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    (ids,), _ = chat.tokenize(["why is the sky blue?"], "query")
    assert ids == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    authors = authors_inputs(tokenizer, [authors_query(encoder.config.query_instruction, "why is the sky blue?")])
    assert ids == authors["input_ids"][0][authors["attention_mask"][0].bool()].tolist()
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # system, user, assistant: no extra BOS


def test_a_chat_template_that_writes_bos_gets_no_second_one():
    template = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    tokenizer = word_tokenizer(template, bos=True)
    assert tokenizer("why?")["input_ids"][0] == V["<s>"]  # the tokenizer itself adds BOS to plain text
    encoder = LaSEREncoder(tiny_qwen3(), tokenizer, LaSERConfig(chat_template=True), base_id="test")
    (ids,), _ = encoder.tokenize(["why?"], "document")
    assert ids[:3] == [V["<s>"], V["<|im_start|>"], V["user"]] and ids.count(V["<s>"]) == 1
    assert encoder.count_tokens("why?") == len(ids)


# --------------------------------------------------------------------------------------------------- (b) the vectors


@pytest.mark.parametrize("steps", [1, 3, 5])
def test_vectors_equal_the_authors_rollout(released, qwen3_tokenizer, steps):
    encoder = released.with_config(num_thinking_steps=steps)
    eos = qwen3_tokenizer.eos_token_id
    with torch.inference_mode():
        queries = authors_encode(encoder.model, authors_inputs(qwen3_tokenizer, [authors_query(INSTRUCTION, q)
                                                                                 for q in QUERIES]), steps, eos)
        passages = authors_encode(encoder.model, authors_inputs(qwen3_tokenizer, PASSAGES), steps, eos)
    # the authors' batch is left-padded (to a multiple of 16) across mixed lengths; ours is sorted and padded less
    np.testing.assert_allclose(encoder.encode_queries(QUERIES), queries.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(encoder.encode_queries(QUERIES, batch_size=3), queries.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(encoder.encode_documents(PASSAGES), passages.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(encoder.encode_documents(PASSAGES[1]), passages[1].numpy(), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------------- (c) truncation


def test_truncation_cuts_the_text_and_keeps_the_wrapper(released, qwen3_tokenizer):
    long = " ".join(["why is the sky blue"] * 30)
    for kind, budget, changes in (("query", 48, {"query_max_length": 48}), ("document", 24, {"max_length": 24})):
        short = released.with_config(**changes)
        (one,), _ = short.tokenize(["why"], kind)
        head, tail = one[:one.index(V["why"])], one[one.index(V["why"]) + 1:]
        (ids,), cut = short.tokenize([long], kind)
        full = qwen3_tokenizer(short.render(long, kind), add_special_tokens=False)["input_ids"]
        assert cut == 1 and len(ids) == budget
        assert ids[:len(head)] == head and ids[-len(tail):] == tail  # the template's prefix and closing part
        assert ids[:-len(tail)] == full[:budget - len(tail)]  # the text is cut at its end
        # plain truncation (the authors' collator) would have lost the closing part
        plain = qwen3_tokenizer(short.render(long, kind), truncation=True, max_length=budget)["input_ids"]
        assert plain[-len(tail):] != tail
    with pytest.warns(TruncationWarning, match=r"1 of 2 texts were longer than max_length=48"):
        vectors = released.with_config(query_max_length=48).encode_queries([long, "why?"])
    assert np.isfinite(vectors).all()
    with pytest.raises(ValueError, match="leaves no room for the text"):
        released.with_config(max_length=12).tokenize([long], "document")


def test_query_and_document_budgets_are_separate(released):
    long = " ".join(["why is the sky blue"] * 30)
    encoder = released.with_config(max_length=64, query_max_length=48)
    assert len(encoder.tokenize([long], "query")[0][0]) == 48
    assert len(encoder.tokenize([long], "document")[0][0]) == 64
    assert encoder.max_length == 64
    assert encoder.fingerprint != released.with_config(max_length=64, query_max_length=None).fingerprint


# --------------------------------------------------------------------------------------------------- (d) the preset


@pytest.mark.parametrize("source", [
    "Alibaba-NLP/LaSER-Qwen3-0.6B",
    "Alibaba-NLP/LaSER-Qwen3-4B",
    "alibaba-nlp/laser-qwen3-8b",
    "/models/LaSER-Qwen3-4B",
    "~/.cache/huggingface/hub/models--Alibaba-NLP--LaSER-Qwen3-8B/snapshots/0123abcd",
    "./outputs/laser-qwen3-0.6b/checkpoint-1276-merged",
])
def test_released_family_sources_get_the_training_format(source):
    assert released_preset(source) == RELEASED_PRESET


@pytest.mark.parametrize("source", [
    "Qwen/Qwen3-0.6B", "Alibaba-NLP/LaSER-Qwen3-1.7B", "Alibaba-NLP/gte-Qwen2-1.5B-instruct",
    "/models/laser-qwen3-0.6bx", "builtin:laser", backbones.DEFAULT_BASE,
])
def test_other_sources_keep_the_defaults(source):
    assert released_preset(source) is None


def test_from_pretrained_applies_the_preset_unless_overridden(monkeypatch, tmp_path, qwen3_tokenizer, caplog):
    """No weights are loaded: the backbone loader returns the tiny model."""
    def fake_backbone(source, **kwargs):
        return backbones.LoadedBackbone(model=tiny_qwen3(), tokenizer=qwen3_tokenizer, base_id=f"hf:{source}@main")

    monkeypatch.setattr(backbones, "load_backbone", fake_backbone)
    with caplog.at_level(logging.INFO, logger="laser_rag.encoders.laser"):
        encoder = LaSEREncoder.from_pretrained("Alibaba-NLP/LaSER-Qwen3-0.6B", device="cpu")
    assert encoder.config == LaSERConfig(base_model="Alibaba-NLP/LaSER-Qwen3-0.6B", **RELEASED_PRESET)
    [record] = [r for r in caplog.records if "released LaSER checkpoint" in r.getMessage()]
    assert "Alibaba-NLP/LaSER-Qwen3-0.6B" in record.getMessage() and "\n" not in record.getMessage()
    assert encoder.render("why?", "document").endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")

    override = LaSEREncoder.from_pretrained("Alibaba-NLP/LaSER-Qwen3-4B", device="cpu", num_thinking_steps=1,
                                            chat_template=False, assistant_suffix="")
    assert override.config.num_thinking_steps == 1 and override.render("why?", "document") == "why?"
    assert override.fingerprint != encoder.fingerprint

    unknown = LaSEREncoder.from_pretrained("Qwen/Qwen3-0.6B", device="cpu")
    assert unknown.config == LaSERConfig(base_model="Qwen/Qwen3-0.6B")

    # a local copy with its own laser_config.json reads that config, whatever its name says
    local = tmp_path / "LaSER-Qwen3-0.6B"
    LaSERConfig(base_model="Alibaba-NLP/LaSER-Qwen3-0.6B", num_thinking_steps=2).save(local)
    assert (local / CONFIG_NAME).is_file()
    assert LaSEREncoder.from_pretrained(local, device="cpu").config.chat_template is False


def test_the_format_is_saved_and_in_the_fingerprint(released, tmp_path):
    released.save_pretrained(tmp_path)
    assert LaSERConfig.load(tmp_path) == released.config
    default_format = released.with_config(chat_template=False, assistant_suffix="", query_max_length=None)
    assert default_format.fingerprint != released.fingerprint
    assert released.with_config(assistant_suffix="").fingerprint != released.fingerprint
    other_template = LaSEREncoder(released.model, word_tokenizer(QWEN3_CHAT_TEMPLATE.replace("+ '<|im_end|>'", "+ '<|endoftext|>'")),
                                  released.config, base_id="test:tiny-qwen3")
    assert other_template.fingerprint != released.fingerprint  # the wrapper the tokenizer renders is part of it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert released.fingerprint == released.with_config(explicit_template="{query} {rationale}").fingerprint


def test_explicit_view_in_the_released_format(released):
    prompt = released.render("why?", "explicit", rationale="light of short wavelengths scatter more.")
    assert prompt == released.render("why?", "query") + "light of short wavelengths scatter more."
    vector = released.encode_explicit("why?", "light of short wavelengths scatter more.")
    assert vector.shape == (released.dimension,)
    # the rationale is cut before the query; a query too long on its own is cut too, instead of failing
    rationale = " ".join(["light of short wavelengths scatter more."] * 20)
    (ids,), cut = released.with_config(max_length=48).tokenize(["why?"], "explicit", rationales=[rationale])
    (query,), _ = released.tokenize(["why?"], "query")
    assert cut == 1 and len(ids) == 48 and ids[:len(query)] == query
    (ids,), cut = released.with_config(max_length=40).tokenize([" ".join(["why"] * 40)], "explicit",
                                                               rationales=["because."])
    assert cut == 1 and len(ids) == 40


# Qwen3's chat template, from tokenizer_config.json of Qwen/Qwen3-0.6B (the base of the released checkpoints).
QWEN3_CHAT_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""
