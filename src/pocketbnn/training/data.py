"""Image classification data: readers for the standard on-disk formats, held as uint8 tensors.

Every source gives a :class:`DataSplits`: a train and a test :class:`ImageSet` (uint8 images
``N x C x H x W`` and int64 labels), the number of classes, and the augmentation that suits the
data (see :mod:`pocketbnn.training.augment`). Sources, by name for :func:`load_dataset`:

========================  ==================================================================
``fashion_mnist``         IDX files (``.gz`` or not) in a directory; default
                          ``/usr/share/datasets/fashion-mnist`` (Debian ``dataset-fashion-mnist``)
``idx``                   any directory of MNIST-style IDX files (``train-*``, ``t10k-*``)
``digits``                scikit-learn's bundled 8x8 digits (1,797 images), read from the file
                          shipped inside scikit-learn without importing it
``cifar10``               the python-pickle batches of CIFAR-10 (``data_batch_1..5``, ``test_batch``)
``image_folder``          ``ROOT/train/<class>/*.png`` and ``ROOT/test/<class>/*`` (or ``val``),
                          decoded lazily with Pillow
``synthetic``             class templates plus noise, generated from a seed; for tests
``auto``                  ``fashion_mnist`` when installed, else ``digits``
========================  ==================================================================

A missing dataset raises :class:`DatasetNotFoundError` saying how to get it.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DataSplits",
    "DatasetNotFoundError",
    "FASHION_MNIST_DIR",
    "ImageFolderSet",
    "ImageSet",
    "TensorImageSet",
    "dataset_names",
    "load_dataset",
    "read_idx",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to get them."""


class ImageSet:
    """Indexable uint8 images with labels: ``batch(indices) -> (images N x C x H x W, labels)``."""

    labels: Tensor
    shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class TensorImageSet(ImageSet):
    """Images already in memory as one uint8 tensor ``N x C x H x W``."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.shape = tuple(images.shape[1:])

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        return self.images[indices], self.labels[indices]


class ImageFolderSet(ImageSet):
    """Image files decoded on demand with Pillow, converted to ``mode`` and resized to ``size``.

    Args:
        paths: one file per image.
        labels: class index per image.
        size: (height, width) every image is resized to (bilinear).
        mode: Pillow mode, ``"RGB"`` (3 channels) or ``"L"`` (1 channel).
    """

    def __init__(self, paths: list[Path], labels: list[int], size: tuple[int, int], mode: str) -> None:
        self.paths = paths
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.size = size
        self.mode = mode
        self.shape = (3 if mode == "RGB" else 1, *size)

    def _decode(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as img:
            img = img.convert(self.mode)
            if img.size != (self.size[1], self.size[0]):
                img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        images = np.stack([self._decode(self.paths[i]) for i in indices.tolist()])
        return torch.from_numpy(images), self.labels[indices]


@dataclass(frozen=True)
class DataSplits:
    """A dataset's two splits and what training needs to know about them.

    Attributes:
        name: the source name.
        train, test: the splits.
        num_classes: labels are in ``[0, num_classes)``.
        flip: horizontal flips preserve the class (not for digits and letters).
        crop_padding: pixels of zero padding for random-crop augmentation (0: none).
        classes: class names, when known.
    """

    name: str
    train: ImageSet
    test: ImageSet
    num_classes: int
    flip: bool
    crop_padding: int
    classes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------- IDX files

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed), the format of MNIST and Fashion-MNIST.

    Layout: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions ``d``,
    ``d`` big-endian uint32 sizes, then the values in C order.

    Raises:
        ValueError: bad magic, unknown type code, or a size that does not match the file.
    """
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: header says {dims} x {dtype} ({expected} bytes) but the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(root: Path, split: str, kind: str, how_to_get: str) -> Path:
    # MNIST-style names: "train-images-idx3-ubyte", "t10k-labels.idx1-ubyte", optionally ".gz".
    prefixes = ("train",) if split == "train" else ("t10k", "test")
    rank = 3 if kind == "images" else 1
    for prefix in prefixes:
        for sep in ("-", "."):
            for suffix in ("", ".gz"):
                path = root / f"{prefix}-{kind}{sep}idx{rank}-ubyte{suffix}"
                if path.is_file():
                    return path
    raise DatasetNotFoundError(f"no {split} {kind} IDX file (e.g. {prefixes[0]}-{kind}-idx{rank}-ubyte.gz) "
                               f"in {root}. {how_to_get}")


def _idx_split(root: Path, split: str, how_to_get: str) -> TensorImageSet:
    images = read_idx(_find_idx(root, split, "images", how_to_get))
    labels = read_idx(_find_idx(root, split, "labels", how_to_get))
    if images.ndim == 3:
        images = images[:, None]
    return TensorImageSet(torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels.astype(np.int64)))


def _load_idx(root: Path, name: str, how_to_get: str, classes: tuple[str, ...] = ()) -> DataSplits:
    if not root.is_dir():
        raise DatasetNotFoundError(f"{name}: directory {root} does not exist. {how_to_get}")
    train = _idx_split(root, "train", how_to_get)
    test = _idx_split(root, "test", how_to_get)
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    return DataSplits(name, train, test, num_classes, flip=False, crop_padding=2, classes=classes)


def _fashion_mnist(root: str | Path | None) -> DataSplits:
    how = ("Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or download the four "
           "*-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist into a directory "
           "and pass that directory.")
    splits = _load_idx(Path(root) if root else FASHION_MNIST_DIR, "fashion_mnist", how, FASHION_MNIST_CLASSES)
    # Clothes are left/right symmetric: flips are safe and help.
    return DataSplits(splits.name, splits.train, splits.test, splits.num_classes, flip=True,
                      crop_padding=2, classes=splits.classes)


def _idx_dir(root: str | Path | None) -> DataSplits:
    if root is None:
        raise DatasetNotFoundError("the idx dataset needs a directory: --dataset idx:/path/to/dir")
    return _load_idx(Path(root), "idx", "Put train-images/train-labels/t10k-images/t10k-labels IDX files there.")


# --------------------------------------------------------------------------------- 8x8 digits

def _sklearn_digits_file() -> Path:
    # find_spec locates the package without importing it (sklearn's import pulls in scipy).
    spec = importlib.util.find_spec("sklearn")
    how = "Install scikit-learn (`pip install scikit-learn`), which ships the digits as a data file."
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(f"digits: scikit-learn is not installed. {how}")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DatasetNotFoundError(f"digits: {path} is missing from the scikit-learn install. {how}")
    return path


def _digits(root: str | Path | None) -> DataSplits:
    """The UCI optical digits as scikit-learn ships them: 64 values in [0, 16], then the label.

    Pixels are scaled to uint8 by ``round(v * 255 / 16)``; a fixed permutation (seed 0) puts
    the first 80% (1,437 images) in train and the rest (360) in test.
    """
    table = np.loadtxt(Path(root) if root else _sklearn_digits_file(), delimiter=",", dtype=np.float64)
    images = np.round(table[:, :64] * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = table[:, 64].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    return DataSplits(
        "digits",
        TensorImageSet(torch.from_numpy(images[train]), torch.from_numpy(labels[train])),
        TensorImageSet(torch.from_numpy(images[test]), torch.from_numpy(labels[test])),
        num_classes=10, flip=False, crop_padding=1, classes=tuple(str(d) for d in range(10)),
    )


# ---------------------------------------------------------------------------------- CIFAR-10

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles only the numpy array reconstruction the CIFAR batches use: loading a
    downloaded pickle can then not run arbitrary code."""

    # _codecs.encode: how Python 3 pickles the bytes inside an array at protocol 2.
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which is not allowed")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as f:
        entry = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(entry[b"labels"], dtype=np.int64)


def _cifar10(root: str | Path | None) -> DataSplits:
    how = ("Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it and pass the "
           "cifar-10-batches-py directory: --dataset cifar10:/path/to/cifar-10-batches-py")
    if root is None:
        raise DatasetNotFoundError(f"cifar10 needs a directory. {how}")
    root = Path(root)
    names = [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in [*names, "test_batch"] if not (root / n).is_file()]
    if missing:
        raise DatasetNotFoundError(f"cifar10: {', '.join(missing)} not found in {root}. {how}")
    parts = [_cifar_batch(root / n) for n in names]
    test_x, test_y = _cifar_batch(root / "test_batch")
    train = TensorImageSet(torch.from_numpy(np.concatenate([p[0] for p in parts])),
                           torch.from_numpy(np.concatenate([p[1] for p in parts])))
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    return DataSplits("cifar10", train, TensorImageSet(torch.from_numpy(test_x), torch.from_numpy(test_y)),
                      num_classes=10, flip=True, crop_padding=4, classes=classes)


# ------------------------------------------------------------------------------ image folder

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def _image_folder(root: str | Path | None, *, size: int | None = None, mode: str = "RGB",
                  flip: bool = True) -> DataSplits:
    """``ROOT/train/<class>/<image>`` and ``ROOT/test/<class>/<image>`` (or ``val``), classes in
    sorted order of their directory names, as torchvision's ImageFolder. Images are resized to
    ``size`` x ``size`` (default: the first training image's size)."""
    if root is None:
        raise DatasetNotFoundError("image_folder needs a directory: --dataset image_folder:/path (with train/ and test/)")
    if importlib.util.find_spec("PIL") is None:
        raise ImportError("image_folder decodes images with Pillow: `pip install pillow`")
    root = Path(root)
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise DatasetNotFoundError(f"image_folder: expected {root}/train/<class>/ and {root}/test/<class>/ "
                                   "(or val/) directories of images")
    classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())

    def files(split_dir: Path) -> tuple[list[Path], list[int]]:
        paths, labels = [], []
        for label, name in enumerate(classes):
            found = sorted(p for p in (split_dir / name).glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
            paths += found
            labels += [label] * len(found)
        if not paths:
            raise DatasetNotFoundError(f"image_folder: no images under {split_dir}")
        return paths, labels

    train_paths, train_labels = files(root / "train")
    if size is None:
        from PIL import Image

        with Image.open(train_paths[0]) as first:
            hw = (first.height, first.width)
    else:
        hw = (size, size)
    return DataSplits("image_folder", ImageFolderSet(train_paths, train_labels, hw, mode),
                      ImageFolderSet(*files(test_dir), hw, mode), num_classes=len(classes),
                      flip=flip, crop_padding=max(hw) // 8, classes=tuple(classes))


# --------------------------------------------------------------------------------- synthetic

def _synthetic(root: str | Path | None, *, num_classes: int = 4, size: int = 8, channels: int = 1,
               train_size: int = 256, test_size: int = 64, seed: int = 0) -> DataSplits:
    """Each class is a random uint8 template; an image is its class template plus Gaussian noise
    (std 40), clipped to [0, 255]. Learnable in a few steps; for tests."""
    del root
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(num_classes, channels, size, size))

    def make(n: int) -> TensorImageSet:
        labels = rng.integers(0, num_classes, size=n)
        images = np.clip(templates[labels] + rng.normal(0, 40, size=(n, channels, size, size)), 0, 255)
        return TensorImageSet(torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels))

    return DataSplits("synthetic", make(train_size), make(test_size), num_classes, flip=False, crop_padding=0)


def _auto(root: str | Path | None) -> DataSplits:
    try:
        return _fashion_mnist(root)
    except DatasetNotFoundError:
        return _digits(None)


_SOURCES: dict[str, Callable[..., DataSplits]] = {
    "auto": _auto,
    "cifar10": _cifar10,
    "digits": _digits,
    "fashion_mnist": _fashion_mnist,
    "idx": _idx_dir,
    "image_folder": _image_folder,
    "synthetic": _synthetic,
}


def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_SOURCES)


def load_dataset(spec: str, **options) -> DataSplits:
    """Load a dataset by name, optionally ``NAME:PATH`` to read it from ``PATH``.

    Examples: ``"digits"``, ``"fashion_mnist"``, ``"fashion_mnist:/data/fmnist"``,
    ``"cifar10:/data/cifar-10-batches-py"``, ``"image_folder:/data/flowers"``.

    Args:
        spec: ``NAME`` or ``NAME:PATH``; names are listed by :func:`dataset_names`.
        options: source-specific keywords (``size``/``mode`` for image_folder; sizes and
            ``seed`` for synthetic).

    Raises:
        ValueError: unknown name.
        DatasetNotFoundError: the files are missing; the message says how to get them.
    """
    name, _, path = spec.partition(":")
    if name not in _SOURCES:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return _SOURCES[name](path or None, **options)
