"""Training LatentRAG (and the explicit agent it is compared with) on templated trajectories.

    laser-rag train-latentrag --config training/configs/latentrag.yaml
    laser-rag train-latentrag --config training/configs/latentrag.yaml --set system=explicit --set output_dir=runs/explicit

`laser_rag_training.latentrag.config` holds the settings, `.data` the trajectories with their retrieved documents
and pseudo-relevant sets, `.objective` the three losses of eq. 11 on one teacher-forced batch, `.train` the loop.
"""
