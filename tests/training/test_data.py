import gzip
import importlib.util
import pickle

import numpy as np
import pytest
import torch

from pocketbnn.training import data as data_module
from pocketbnn.training.augment import Augment, channel_stats, normalize, random_crop
from pocketbnn.training.data import DatasetNotFoundError, load_dataset, read_idx


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_dir(root, n_train=12, n_test=5, size=6, compress_train=True):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        raw = _idx_bytes(array)
        if name.startswith("train") and compress_train:
            (root / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (root / name).write_bytes(raw)
    return arrays


def test_idx_directory_round_trip_with_and_without_gzip(tmp_path):
    arrays = _write_idx_dir(tmp_path)
    splits = load_dataset(f"idx:{tmp_path}")
    assert splits.train.shape == (1, 6, 6) and len(splits.train) == 12 and len(splits.test) == 5
    x, y = splits.train.batch(torch.arange(12))
    np.testing.assert_array_equal(x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y.numpy(), arrays["train-labels-idx1-ubyte"])
    x, y = splits.test.batch(torch.tensor([4, 0]))
    np.testing.assert_array_equal(x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"][[4, 0]])
    assert not splits.flip


def test_fashion_mnist_from_a_directory_flips(tmp_path):
    _write_idx_dir(tmp_path)
    splits = load_dataset(f"fashion_mnist:{tmp_path}")
    assert splits.flip and splits.classes[0] == "T-shirt/top"


def test_read_idx_rejects_bad_files(tmp_path):
    good = _idx_bytes(np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "magic")


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")
    (tmp_path / "partial").mkdir()
    with pytest.raises(DatasetNotFoundError, match="train images"):
        load_dataset(f"fashion_mnist:{tmp_path / 'partial'}")


def test_auto_falls_back_to_digits(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "FASHION_MNIST_DIR", tmp_path / "absent")
    assert load_dataset("auto").name == "digits"


def test_digits_from_scikit_learn_file():
    splits = load_dataset("digits")
    assert (len(splits.train), len(splits.test), splits.train.shape) == (1437, 360, (1, 8, 8))
    x, y = splits.train.batch(torch.arange(len(splits.train)))
    assert x.dtype == torch.uint8 and int(x.max()) == 255 and set(y.tolist()) == set(range(10))
    assert not splits.flip


def test_missing_scikit_learn_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(DatasetNotFoundError, match="pip install scikit-learn"):
        load_dataset("digits")


def _write_cifar(root, n=4):
    rng = np.random.default_rng(1)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        entry = {b"batch_label": b"x", b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        (root / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = entry
    return batches


def test_cifar10_pickles(tmp_path):
    batches = _write_cifar(tmp_path)
    splits = load_dataset(f"cifar10:{tmp_path}")
    assert (len(splits.train), len(splits.test), splits.train.shape) == (20, 4, (3, 32, 32))
    x, y = splits.train.batch(torch.tensor([4]))       # first image of data_batch_2
    row = batches["data_batch_2"][b"data"][0]
    np.testing.assert_array_equal(x[0, 0].flatten().numpy(), row[:1024])      # red plane first
    np.testing.assert_array_equal(x[0, 2].flatten().numpy(), row[2048:])
    assert y.item() == batches["data_batch_2"][b"labels"][0]
    assert splits.flip and splits.crop_padding == 4


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz"):
        load_dataset(f"cifar10:{tmp_path}")


@pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="Pillow not installed")
def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    pixels = {}
    for split, count in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                array = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
                Image.fromarray(array).save(tmp_path / split / cls / f"{i}.png")
                pixels[(split, cls, i)] = array
    splits = load_dataset(f"image_folder:{tmp_path}")
    assert splits.classes == ("cat", "dog") and splits.num_classes == 2
    assert (len(splits.train), len(splits.test), splits.train.shape) == (6, 2, (3, 5, 7))
    x, y = splits.train.batch(torch.tensor([4, 0]))
    assert y.tolist() == [1, 0]
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(), pixels[("train", "dog", 1)])
    gray = load_dataset(f"image_folder:{tmp_path}", size=4, mode="L")
    assert gray.test.batch(torch.tensor([0]))[0].shape == (1, 1, 4, 4)


def test_image_folder_without_splits(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train/<class>"):
        load_dataset(f"image_folder:{tmp_path}")


def test_synthetic_is_reproducible_and_unknown_names_fail():
    a, b = load_dataset("synthetic", seed=3), load_dataset("synthetic", seed=3)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")


def test_random_crop_is_a_window_of_the_zero_padded_image():
    images = torch.randint(1, 256, (3, 2, 5, 6), dtype=torch.uint8)
    top, left = torch.tensor([0, 2, 4]), torch.tensor([4, 1, 0])
    out = random_crop(images, 2, top, left)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(3):
        assert torch.equal(out[i], padded[i, :, top[i]:top[i] + 5, left[i]:left[i] + 6])
    assert torch.equal(random_crop(images, 0, top, left), images)


def test_augment_draws_slice_consistently_and_normalizes():
    images = torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8)
    mean, std = channel_stats(images)
    augment = Augment(mean, std, crop_padding=1, flip=True)
    draw = augment.draw(8, torch.Generator().manual_seed(0))
    whole = augment.train(images, draw)
    torch.testing.assert_close(augment.train(images[4:], draw[4:]), whole[4:])
    flipped = augment.train(images, type(draw)(torch.ones(8, dtype=torch.long), torch.ones(8, dtype=torch.long),
                                               torch.ones(8, dtype=torch.bool)))
    torch.testing.assert_close(flipped, augment.eval(images).flip(3))
    normalized = normalize(images, mean, std)
    torch.testing.assert_close(normalized.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    no_flip = Augment(mean, std, crop_padding=0, flip=False)
    assert not no_flip.draw(100, torch.Generator().manual_seed(0)).flip.any()
