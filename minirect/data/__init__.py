"""Datasets, the mini-batch loader, and batch transforms.

    from minirect.data import Digits, DataLoader
    train = Digits(train=True)                 # embedded: works offline
    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)

Real datasets (``MNIST``, ``FashionMNIST``, ``CIFAR10``) are read from
``root=``, ``$MINIRECT_DATA`` or ``~/.cache/minirect``, and fetched with
``download=True``; ``load_dataset(name, split)`` picks one by name.
"""

from .datasets import (  # noqa: F401
    CIFAR10, DATASETS, Digits, FashionMNIST, ImageDataset, MNIST, load_dataset,
)
from .download import DatasetError, data_root, download_file  # noqa: F401
from .loader import DataLoader  # noqa: F401
from .transforms import (  # noqa: F401
    Compose, Normalize, RandomCrop, RandomHorizontalFlip, SubtractMean, ToFloat,
    per_channel_mean_std, per_pixel_mean, paper_input_transform,
)
