"""The chapter-4 architectures of "Deep Learning with Python", with dropout where it helped on validation. Each
builder takes the recipe and the encoded training input (Boston adapts its normalization on it) and returns a
compiled model; a recipe names its builder (:attr:`training.recipes.Recipe.build`). TensorFlow loads when the
first model is built, not when a recipe is read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from training.recipes import Recipe


def _dense_stack(layers, x, units: int, dropout: float):
    for _ in range(2):
        x = layers.Dense(units, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return x


def imdb_model(recipe: Recipe, x_train: np.ndarray):
    from tfshared.tfkeras import keras

    inputs = keras.Input((x_train.shape[1],), name=recipe.inputs.name)
    x = _dense_stack(keras.layers, inputs, 16, recipe.dropout)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=recipe.output_name)(x)
    model = keras.Model(inputs, outputs, name=recipe.name)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def reuters_model(recipe: Recipe, x_train: np.ndarray):
    from tfshared.tfkeras import keras

    inputs = keras.Input((x_train.shape[1],), name=recipe.inputs.name)
    x = _dense_stack(keras.layers, inputs, 64, recipe.dropout)
    outputs = keras.layers.Dense(len(recipe.labels), activation="softmax", name=recipe.output_name)(x)
    model = keras.Model(inputs, outputs, name=recipe.name)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(3, name="top3_accuracy")],
    )
    return model


def boston_model(recipe: Recipe, x_train: np.ndarray):
    """Normalization is adapted on the training split and lives inside the model: callers send raw features."""
    from tfshared.tfkeras import keras

    norm = keras.layers.Normalization(name="normalize")
    norm.adapt(x_train)
    inputs = keras.Input((x_train.shape[1],), name=recipe.inputs.name)
    x = _dense_stack(keras.layers, norm(inputs), 64, recipe.dropout)
    outputs = keras.layers.Dense(1, name=recipe.output_name)(x)
    model = keras.Model(inputs, outputs, name=recipe.name)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse", metrics=["mae"])
    return model
