"""Multi-hot batches built on the fly from a compact uint8 matrix: the float32 25,000 x 10,000
matrix (1 GB per split) is never materialised."""

from __future__ import annotations

import numpy as np

from tfshared.tfkeras import keras


class MultiHotBatches(keras.utils.Sequence):
    def __init__(self, x_u8: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        super().__init__()
        self.x, self.y, self.batch_size, self.shuffle = x_u8, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(y)) if shuffle else np.arange(len(y))

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, i: int):
        idx = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        return self.x[idx].astype(np.float32), self.y[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self.rng.permutation(len(self.y))
