"""Small real networks the book quantizes: digits MLP, CNN and a tiny transformer."""

from inwhale.models.digits import (
    DigitsTransformer,
    accuracy,
    digits_cnn,
    digits_mlp,
    train_classifier,
)

__all__ = ["DigitsTransformer", "accuracy", "digits_cnn", "digits_mlp", "train_classifier"]
