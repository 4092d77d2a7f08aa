"""A tiny LatentRAG model built from configs (random weights, the real tokenizers): fast and deterministic."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    from laser_rag import _models, backbones
    from laser_rag.encoders.sentence_transformer import minilm_path
    from laser_rag.latentrag import LatentRAGConfig, LatentRAGModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(_models.locate(backbones.DEFAULT_BASE)[0])
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                       tie_word_embeddings=True, attn_implementation="sdpa")).eval()
    retriever_tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    retriever = BertModel(BertConfig(vocab_size=retriever_tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)).eval()
    config = LatentRAGConfig(max_answer_tokens=5, max_decode_tokens=6, max_retrievals=3, document_chars=120)
    model = LatentRAGModel(config, llm, tokenizer, retriever, retriever_tokenizer, base_id="tiny").eval()
    model.requires_grad_(False)
    return model


@pytest.fixture
def documents():
    """Three real HotpotQA-style passages (text only matters for token counts here)."""
    from laser_rag.store import Hit

    texts = [("Paris", "Paris is the capital and most populous city of France."),
             ("France", "France is a country in Western Europe with several overseas regions."),
             ("Seine", "The Seine is a river that flows through Paris into the English Channel.")]
    return [Hit(id=str(i), title=t, text=x, score=0.0) for i, (t, x) in enumerate(texts)]
