"""LaSER training (installed as ``laser_rag_training``, the ``[train]`` extra): dual-view self-distillation.

    laser-rag train --config training/configs/laser.yaml

config (`TrainConfig`), data (examples, hard negatives, batches), losses, segments (rationale steps in tokens),
model (`LaSERModel`: ``forward(batch) -> losses``), checkpoint (resume, RNG state, the run lock), train (the loop),
report (the results table), cli (the ``train`` command).
"""
