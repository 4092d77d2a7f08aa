"""The losses of one batch, teacher-forced (eq. 11): L = L_gen + lambda_ret * L_ret + L_dec.

- L_gen: cross-entropy of every action (the LM head's action rows at each thought block's last position) and of
  every answer token, averaged over those targets together;
- L_ret: `laser_rag.latentrag.functional.retrieval_kl` between the reference retriever's distribution for each
  text subquery and the latent subquery's, over the batch's pseudo-relevant documents (eqs. 7-8);
- L_dec: the projected latent blocks decode their thought / subquery text (eqs. 9-10), averaged over tokens.

All trajectories of a batch go through the LLM in one causal pass (right-padded); the decoding sequences in a second.
`explicit_loss` is the explicit agent's: next-token cross-entropy on the text it writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from laser_rag.latentrag import functional as LF
from laser_rag.latentrag import sequence as S
from laser_rag.latentrag.explicit import explicit_sequence
from laser_rag_training.latentrag.data import Prepared, candidates
from laser_rag_training.trajectories import Trajectory


def documents_of(trajectory: Trajectory) -> list[list[tuple[str, str]]]:
    return [list(zip(step.document_titles, step.documents, strict=True)) for step in trajectory.steps]


def sequence_of(model, trajectory: Trajectory) -> S.TeacherForcedSequence:
    return S.teacher_forced(model, trajectory.question, documents_of(trajectory), trajectory.answer)


def _pad(rows: Sequence[Sequence[int]], value: int) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows])


def forward_hidden(model, ids: Tensor, mask: Tensor, embeds: Tensor | None = None) -> Tensor:
    """Last-layer states of a right-padded batch (positions count from 0 in every row)."""
    embeds = model.embed(ids) if embeds is None else embeds
    positions = torch.arange(ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
    return model.decoder()(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                           use_cache=False).last_hidden_state


def latent_losses(model, batch: Sequence[int], data: Prepared, *, retrieval_weight: float = 1.0,
                  decode_weight: float = 1.0, micro_batch: int = 0) -> dict[str, Tensor]:
    """The three losses of the trajectories ``batch`` (indices into ``data.trajectories``).

    ``micro_batch`` > 0 runs forward and backward that many trajectories at a time (gradient accumulation, so only
    that many trajectories' activations are held at once) and returns detached values. It is
    exact: every loss is a sum over targets divided by the whole batch's count, and the retrieval KL's candidate
    set is always the whole batch's pseudo-relevant documents.
    """
    docs = torch.from_numpy(data.doc_vectors[candidates([r for i in batch for r in data.pseudo[i]])]).to(model.device)
    counts = [_counts(model, data.trajectories[i]) for i in batch]
    totals = [max(1, sum(c[k] for c in counts)) for k in range(3)]
    size = micro_batch if micro_batch > 0 else len(batch)
    chunks = [list(batch[i:i + size]) for i in range(0, len(batch), size)]
    out: dict[str, Tensor] = {}
    for chunk in chunks:
        sums = _latent_sums(model, chunk, data, docs)
        parts = {"gen": sums["gen"] / totals[0], "ret": sums["ret"] / totals[1], "dec": sums["dec"] / totals[2]}
        parts["loss"] = parts["gen"] + retrieval_weight * parts["ret"] + decode_weight * parts["dec"]
        if micro_batch > 0:
            parts["loss"].backward()
            parts = {k: v.detach() for k, v in parts.items()}
        for key, value in parts.items():
            out[key] = out[key] + value if key in out else value
    return out


def _blocks_text(trajectory: Trajectory) -> tuple[list[str], list[str]]:
    thoughts = [step.thought for step in trajectory.steps] + [trajectory.final_thought]
    return thoughts, [step.subquery for step in trajectory.steps]


def _counts(model, trajectory: Trajectory) -> tuple[int, int, int]:
    """(generation targets, subqueries, decoding targets) of one trajectory."""
    thoughts, queries = _blocks_text(trajectory)
    answer = len(S.answer_target_ids(model.tokenizer, trajectory.answer))
    decoded = sum(len(S.text_ids(model.tokenizer, " ".join(t.split()))) + 1 for t in thoughts + queries)
    return len(trajectory.steps) + 1 + answer, len(trajectory.steps), decoded


def _latent_sums(model, batch: Sequence[int], data: Prepared, docs: Tensor) -> dict[str, Tensor]:
    device = model.device
    trajectories = [data.trajectories[i] for i in batch]
    sequences = [sequence_of(model, t) for t in trajectories]
    ids = _pad([s.ids for s in sequences], model.tokenizer.pad_token_id or 0).to(device)
    mask = _pad([[1] * len(s.ids) for s in sequences], 0).to(device)
    hidden = forward_hidden(model, ids, mask)

    # L_gen: actions and answer tokens
    rows, cols, action_targets = [], [], []
    for row, seq in enumerate(sequences):
        for block, action in zip(seq.thought_positions, seq.actions, strict=True):
            rows.append(row)
            cols.append(block[-1])
            action_targets.append(action)
    action_logits = model.action_logits(hidden[rows, cols])
    answer_rows = [row for row, seq in enumerate(sequences) for _ in seq.answer_positions]
    answer_cols = [p for seq in sequences for p in seq.answer_positions]
    answer_targets = [t for seq in sequences for t in seq.answer_targets]
    answer_logits = model.lm_logits(hidden[answer_rows, answer_cols])
    gen = (F.cross_entropy(action_logits.float(), torch.tensor(action_targets, device=device), reduction="sum")
           + F.cross_entropy(answer_logits.float(), torch.tensor(answer_targets, device=device), reduction="sum"))

    # L_ret: latent subquery vectors against the reference distribution over the batch's pseudo-relevant documents
    query_blocks = [hidden[row, block] for row, seq in enumerate(sequences) for block in seq.query_positions]
    if query_blocks:
        latent = model.latent_query_vectors(torch.stack(query_blocks))
        reference = torch.from_numpy(np.concatenate([data.reference[i] for i in batch])).to(device)
        ret = LF.retrieval_kl(latent, reference, docs, data.beta) * len(query_blocks)
    else:
        ret = gen.new_zeros(())

    # L_dec: decode every thought block and every subquery block back into its text
    blocks = []
    for row, (seq, trajectory) in enumerate(zip(sequences, trajectories, strict=True)):
        thoughts, queries = _blocks_text(trajectory)
        for block, text in zip(seq.thought_positions, thoughts, strict=True):
            blocks.append(("thought", hidden[row, block], text))
        for block, text in zip(seq.query_positions, queries, strict=True):
            blocks.append(("query", hidden[row, block], text))
    return {"gen": gen, "ret": ret, "dec": decode_loss(model, blocks, reduction="sum")}


def decode_loss(model, blocks: Sequence[tuple[str, Tensor, str]], reduction: str = "mean") -> Tensor:
    """Token cross-entropy of decoding each block's text (+ EOS) from its projected latents (eqs. 9-10)."""
    from laser_rag.latentrag.agent import decode_inputs

    eos = model.tokenizer.eos_token_id
    inputs, targets = [], []
    for kind, states, text in blocks:
        prefix = decode_inputs(model, kind, states)
        target = S.text_ids(model.tokenizer, " ".join(text.split())) + [eos]
        inputs.append(torch.cat([prefix, model.embed(torch.tensor(target[:-1], device=model.device))]))
        targets.append([-100] * (prefix.shape[0] - 1) + target)
    width = max(x.shape[0] for x in inputs)
    embeds = inputs[0].new_zeros(len(inputs), width, inputs[0].shape[1])
    mask = torch.zeros(len(inputs), width, dtype=torch.long, device=model.device)
    for i, x in enumerate(inputs):
        embeds[i, :x.shape[0]] = x
        mask[i, :x.shape[0]] = 1
    labels = _pad(targets, -100).to(model.device)
    hidden = forward_hidden(model, mask, mask, embeds=embeds)
    keep = labels != -100
    return F.cross_entropy(model.lm_logits(hidden[keep]).float(), labels[keep], reduction=reduction)


def explicit_examples(tokenizer, config, trajectory: Trajectory) -> list[tuple[list[int], list[bool]]]:
    """The explicit agent's training sequences of one trajectory: the whole text trajectory, then the naive
    (first step's documents, then the answer) and direct (question, then the answer) formats."""
    steps = [(s.thought, s.subquery, list(zip(s.document_titles, s.documents, strict=True))) for s in trajectory.steps]
    full = explicit_sequence(tokenizer, config, trajectory.question, steps, trajectory.final_thought,
                             trajectory.answer)
    naive = explicit_sequence(tokenizer, config, trajectory.question, [], None, trajectory.answer,
                              documents=steps[0][2])
    direct = explicit_sequence(tokenizer, config, trajectory.question, [], None, trajectory.answer)
    return [full, naive, direct]


def explicit_loss(model, examples: Sequence[tuple[list[int], list[bool]]], micro_batch: int = 0) -> dict[str, Tensor]:
    """Next-token cross-entropy on the written positions, averaged over the batch's written tokens. ``micro_batch``
    > 0: forward and backward that many sequences at a time (exact gradient accumulation), detached values back."""
    if micro_batch > 0:
        total = sum(sum(written[1:]) for _, written in examples)
        loss = None
        for start in range(0, len(examples), micro_batch):
            chunk = examples[start:start + micro_batch]
            part = _explicit_sum(model, chunk) / max(total, 1)
            part.backward()
            loss = part.detach() if loss is None else loss + part.detach()
        return {"gen": loss, "loss": loss}
    loss = _explicit_sum(model, examples) / max(1, sum(sum(written[1:]) for _, written in examples))
    return {"gen": loss, "loss": loss}


def _explicit_sum(model, examples: Sequence[tuple[list[int], list[bool]]]) -> Tensor:
    ids = _pad([e[0] for e in examples], model.tokenizer.pad_token_id or 0).to(model.device)
    mask = _pad([[1] * len(e[0]) for e in examples], 0).to(model.device)
    labels = _pad([[t if w else -100 for t, w in zip(*e, strict=True)] for e in examples], -100).to(model.device)
    hidden = forward_hidden(model, ids, mask)[:, :-1]
    targets = labels[:, 1:]
    keep = targets != -100
    return F.cross_entropy(model.lm_logits(hidden[keep]).float(), targets[keep], reduction="sum")
