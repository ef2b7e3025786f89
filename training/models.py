"""The chapter-4 architectures of "Deep Learning with Python", with dropout where it helped on validation."""

from __future__ import annotations

import numpy as np

from tfshared.tfkeras import keras

L = keras.layers


def _dense_stack(x, units: int, dropout: float):
    for _ in range(2):
        x = L.Dense(units, activation="relu")(x)
        if dropout:
            x = L.Dropout(dropout)(x)
    return x


def imdb_model(num_words: int, dropout: float) -> keras.Model:
    inputs = keras.Input((num_words,), name="multi_hot")
    x = _dense_stack(inputs, 16, dropout)
    outputs = L.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(inputs, outputs, name="imdb")
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def reuters_model(num_words: int, num_classes: int, dropout: float) -> keras.Model:
    inputs = keras.Input((num_words,), name="multi_hot")
    x = _dense_stack(inputs, 64, dropout)
    outputs = L.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="reuters")
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(3, name="top3_accuracy")])
    return model


def boston_model(x_train: np.ndarray) -> keras.Model:
    """Normalization is adapted on the training split and lives inside the model: callers send raw features."""
    norm = L.Normalization(name="normalize")
    norm.adapt(x_train)
    inputs = keras.Input((x_train.shape[1],), name="features")
    x = _dense_stack(norm(inputs), 64, dropout=0.0)
    outputs = L.Dense(1, name="price")(x)
    model = keras.Model(inputs, outputs, name="boston")
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse", metrics=["mae"])
    return model
