"""laser_rag_datasets: the readers of the shared public sets, the layer between the library and the layers that
use the sets (installed from the repository's laser_rag_datasets/ folder; the ``app``, ``train`` and ``eval`` extras
bring it, it needs nothing beyond `laser_rag`'s own dependencies).

- `laser_rag_datasets.shared`: the shared public sets (SciFact, StrategyQA, HotpotQA, MuSiQue, HotpotQA evidence,
  IRCoT) as `laser_rag.beir.RetrievalDataset`s and training records, with their licences.
- `laser_rag_datasets.subsets`: smaller sets cut from them: `slice_dataset` and the validation sets training and
  the fusion benchmark share (`validation_set`).

It imports `laser_rag` only; the benchmarks, the trainer and the app import it, never one another. Importing this
package loads nothing heavy; import the module you need.
"""
