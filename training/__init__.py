"""LaSER training: dual-view self-distillation (losses, rationale segments, data, the driver).

    laser-rag train --config training/configs/laser.yaml
"""
