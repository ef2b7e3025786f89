"""Dataset loading for training and export: a local folder of Keras files, or ``keras.datasets`` downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard.datasets import LOADERS, Dataset
from modelyard.errors import DatasetError
from modelyard.hashing import file_digest

NUM_WORDS = 10000
_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass(frozen=True)
class KerasDataset:
    """Where ``keras.datasets`` keeps one dataset. A text dataset (token ids) has a word index, checked by its
    md5 as Keras publishes it; a tabular one (float features) has none."""

    module: str
    file: str
    word_index_md5: str | None = None

    @property
    def is_text(self) -> bool:
        return self.word_index_md5 is not None


KERAS_DATASETS = {
    "imdb": KerasDataset("imdb", "imdb.npz", "bfafd718b763782e994055a2d397834f"),
    "reuters": KerasDataset("reuters", "reuters.npz", "4d44cc38712099c9e383dc6e5f11a921"),
    "boston": KerasDataset("boston_housing", "boston_housing.npz"),
}


def load_dataset(name: str, data_dir: Path | None) -> Dataset:
    if data_dir is not None:
        kwargs = {"num_words": NUM_WORDS} if KERAS_DATASETS[name].is_text else {}
        return LOADERS[name](Path(data_dir), **kwargs)
    return _download(name)


def _download(name: str) -> Dataset:
    """For users who are online: keras.datasets fetches and hash-checks the standard files (cached in
    ~/.keras/datasets). A failed download is one error naming the way out, not keras' traceback."""
    from tfshared.tfkeras import keras

    try:
        return _fetch(keras, name, KERAS_DATASETS[name])
    except Exception as e:  # keras' get_file raises a bare Exception for network errors, ValueError for a bad hash
        if type(e) is not Exception and not isinstance(e, (OSError, ValueError)):
            raise
        raise DatasetError(
            f"cannot download the {name} dataset with keras.datasets ({e}); offline, point "
            "--data-dir (or MODELYARD_DATA_DIR) at a folder with the standard Keras files"
        ) from None


def _fetch(keras, name: str, where: KerasDataset) -> Dataset:
    module = getattr(keras.datasets, where.module)
    (x_tr, y_tr), (x_te, y_te) = module.load_data(**({"num_words": NUM_WORDS} if where.is_text else {}))
    vocab = None
    if where.is_text:
        vocab = Path(
            keras.utils.get_file(
                f"{name}_word_index.json", _ORIGIN + f"{name}_word_index.json", file_hash=where.word_index_md5
            )
        )
        x_tr, x_te = [list(s) for s in x_tr], [list(s) for s in x_te]
    else:
        x_tr, x_te = x_tr.astype(np.float32), x_te.astype(np.float32)
        y_tr, y_te = y_tr.astype(np.float32), y_te.astype(np.float32)
    cache = Path(keras.utils.get_file(where.file, _ORIGIN + where.file))
    files = {cache.name: file_digest(cache)}
    if vocab is not None:
        files[vocab.name] = file_digest(vocab)
    return Dataset(
        name, x_tr, np.asarray(y_tr), x_te, np.asarray(y_te), source="keras.datasets", files=files, vocab_file=vocab
    )
