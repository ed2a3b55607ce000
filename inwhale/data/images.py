"""Small real images that ship with scikit-learn: a photograph and handwritten digits.

* :func:`china_photo` — the 427 x 640 colour photograph ``china.jpg`` (a temple in China)
  from ``sklearn.datasets.load_sample_image``: the book's test image for quantizing pixels
  (posterization, dithering, colour palettes, DPCM).
* :func:`digits` — the UCI optical-recognition digits, 1,797 images of 8 x 8 pixels with
  16 grey levels, labels 0-9; small enough to train a classifier on a laptop in seconds.
* :func:`digits_split` — a fixed, stratified train/test split of :func:`digits`.

Nothing is downloaded: scikit-learn's wheel contains both data sets.

Example:
    >>> from inwhale.data.images import china_photo, digits
    >>> china_photo().shape, digits()[0].shape
    (torch.Size([427, 640, 3]), torch.Size([1797, 8, 8]))
"""

from __future__ import annotations

import torch

__all__ = ["LUMA_WEIGHTS", "china_photo", "digits", "digits_split"]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights for R, G, B, used to turn the photo grey."""


def china_photo(gray: bool = False) -> torch.Tensor:
    """Return scikit-learn's ``china.jpg`` as floats in ``[0, 1]``.

    Args:
        gray: if True, return luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (BT.601).

    Returns:
        float32 tensor of shape ``(427, 640, 3)`` (height, width, RGB), or ``(427, 640)`` when
        ``gray``. Values are the 8-bit pixels divided by 255, so they already lie on a
        256-level grid.

    Example:
        >>> img = china_photo(gray=True)
        >>> img.shape, bool(img.min() >= 0), bool(img.max() <= 1)
        (torch.Size([427, 640]), True, True)
    """
    from sklearn.datasets import load_sample_image

    rgb = torch.from_numpy(load_sample_image("china.jpg").copy()).float() / 255.0  # (H, W, 3)
    if gray:
        return rgb @ torch.tensor(LUMA_WEIGHTS)  # (H, W)
    return rgb


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Return the 8 x 8 handwritten digits as images in ``[0, 1]`` and their labels.

    Returns:
        ``(X, y)``: ``X`` float32 of shape ``(1797, 8, 8)`` (pixel values 0..16 divided by 16)
        and ``y`` int64 of shape ``(1797,)`` with values 0..9.

    Example:
        >>> X, y = digits()
        >>> float(X.max()), int(y[:10].sum())
        (1.0, 45)
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy(data.images.copy()).float() / 16.0  # (1797, 8, 8)
    return images, torch.from_numpy(data.target.copy()).long()


def digits_split(
    test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed train/test split of :func:`digits`, stratified by label.

    Args:
        test_fraction: share of images in the test set, in ``(0, 1)``.
        seed: seed of the shuffle; the same seed always gives the same split.

    Returns:
        ``(X_train, y_train, X_test, y_test)``; with the defaults 1347 train and 450 test images.

    Raises:
        ValueError: if ``test_fraction`` is not strictly between 0 and 1.

    Example:
        >>> X_train, y_train, X_test, y_test = digits_split()
        >>> X_train.shape, X_test.shape
        (torch.Size([1347, 8, 8]), torch.Size([450, 8, 8]))
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.model_selection import train_test_split

    X, y = digits()
    train_idx, test_idx = train_test_split(
        torch.arange(len(y)).numpy(),
        test_size=test_fraction,
        random_state=seed,
        stratify=y.numpy(),
    )
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return X[train_idx], y[train_idx], X[test_idx], y[test_idx]
