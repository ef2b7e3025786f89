"""What differs between the models: architecture, input, task, metric, and fit settings. The trainer reads
everything model-specific from a recipe: adding a model is one recipe here (and its dataset loader in
:mod:`modelyard.datasets`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelyard.datasets import BOSTON_FEATURES
from modelyard.tasks import Binary, Multiclass, Regression, Task
from training import models
from training.inputs import Inputs, MultiHotText, TabularFeatures

IMDB_LABELS = ["negative", "positive"]
# keras.datasets.reuters.get_label_names(), the topic of each class id.
REUTERS_LABELS = [
    "cocoa",
    "grain",
    "veg-oil",
    "earn",
    "acq",
    "wheat",
    "copper",
    "housing",
    "money-supply",
    "coffee",
    "sugar",
    "trade",
    "reserves",
    "ship",
    "cotton",
    "carcass",
    "crude",
    "nat-gas",
    "cpi",
    "money-fx",
    "interest",
    "gnp",
    "meal-feed",
    "alum",
    "oilseed",
    "gold",
    "tin",
    "strategic-metal",
    "livestock",
    "retail",
    "ipi",
    "iron-steel",
    "rubber",
    "heat",
    "jobs",
    "lei",
    "bop",
    "zinc",
    "orange",
    "pet-chem",
    "dlr",
    "gas",
    "silver",
    "wpi",
    "hog",
    "lead",
]


@dataclass(frozen=True)
class Recipe:
    name: str
    build: Callable
    """``build(recipe, x_train) -> compiled keras.Model`` (:mod:`training.models`)"""
    inputs: Inputs
    """how the input is encoded, batched and recorded in the manifest (:mod:`training.inputs`)"""
    task: type[Task]
    """:class:`~modelyard.tasks.Binary`, :class:`~modelyard.tasks.Multiclass` or :class:`~modelyard.tasks.Regression`:
    the test metric, the trivial baseline and which validation score is best follow from it"""
    max_epochs: int
    batch_size: int
    patience: int
    labels: list[str] | None
    output_name: str
    output_description: str
    dropout: float = 0.0
    val_fraction: float = 0.2
    """Share of the training split held out to choose the epoch count (text models)."""
    kfold: int = 0
    """K > 0: K-fold validation chooses the epoch count (small data) instead of a held-out share"""
    kfold_epochs: int = 0

    @property
    def metric(self) -> str:
        return self.task.metric


RECIPES = {
    "imdb": Recipe(
        "imdb",
        models.imdb_model,
        MultiHotText(),
        Binary,
        max_epochs=20,
        batch_size=512,
        patience=3,
        labels=IMDB_LABELS,
        output_name="probability",
        output_description="probability that the review is positive",
        dropout=0.3,
    ),
    # The book's 1,000 of 8,982 newswires held out; dropout did not help Reuters on validation.
    "reuters": Recipe(
        "reuters",
        models.reuters_model,
        MultiHotText(),
        Multiclass,
        max_epochs=40,
        batch_size=512,
        patience=3,
        val_fraction=0.1,
        labels=REUTERS_LABELS,
        output_name="probabilities",
        output_description="probability of each of the 46 topics",
    ),
    "boston": Recipe(
        "boston",
        models.boston_model,
        TabularFeatures(BOSTON_FEATURES),
        Regression,
        max_epochs=300,
        batch_size=16,
        patience=25,
        labels=None,
        output_name="price",
        output_description="median home value in $1000s",
        kfold=4,
        kfold_epochs=150,
    ),
}
FEATURE_NAMES = BOSTON_FEATURES
