import gzip
import os

import numpy as np
import pytest

from keras_pixelcnn.data import sources as data
from keras_pixelcnn.data.pipeline import Preprocessing, make_dataset

HAVE_FASHION = os.path.exists(os.path.join(data.FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))


@pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install -y dataset-fashion-mnist (.ci/run installs it)")
def test_offline_fashion_mnist_is_the_real_dataset():
    train = data.load("fashion_mnist", "train")
    test = data.load("fashion_mnist", "test")
    assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # upstream's first labels
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.origin == data.FASHION_MNIST_DIR and train.num_classes == 10


@pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install -y dataset-fashion-mnist")
def test_split_slices():
    assert data.load("fashion_mnist", "train[:90%]").num_examples == 54000
    assert data.load("fashion_mnist", "train[90%:]").num_examples == 6000
    part = data.load("fashion_mnist", "test[100:200]")
    np.testing.assert_array_equal(part.images, data.load("fashion_mnist", "test").images[100:200])


def _write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as handle:
        handle.write(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader_round_trip(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 256, (7, 5, 3)).astype(np.uint8)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    _write_idx(path, array, compress)
    np.testing.assert_array_equal(data.read_idx(path), array)


def test_idx_reader_rejects_bad_files(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(data.DataError, match="bad magic"):
        data.read_idx(bad_magic)
    truncated = tmp_path / "short"
    _write_idx(truncated, np.zeros((4, 4), np.uint8), False)
    truncated.write_bytes(truncated.read_bytes()[:-3])
    with pytest.raises(data.DataError, match="Truncated"):
        data.read_idx(truncated)


def test_idx_directory_as_fashion_mnist(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    labels = np.arange(20) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, True)
    source = data.load("fashion_mnist", "test", data_dir=str(tmp_path))
    np.testing.assert_array_equal(source.images[..., 0], images)
    np.testing.assert_array_equal(source.labels, labels)


def test_missing_files_name_the_apt_package(tmp_path):
    with pytest.raises(data.DataError, match="apt-get install -y dataset-fashion-mnist"):
        data.load("fashion_mnist", "train", data_dir=str(tmp_path))


def test_unknown_dataset():
    with pytest.raises(data.DataError, match="Unknown dataset 'no_such_dataset'"):
        data.load("no_such_dataset")


def test_image_folder_with_classes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    arrays = {}
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for index in range(3):
            arrays[(name, index)] = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
            Image.fromarray(arrays[(name, index)]).save(tmp_path / name / f"{index}.png")
    source = data.load(f"folder:{tmp_path}")
    assert source.image_shape == (6, 5, 3) and source.num_classes == 2
    assert source.labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(source.images[4], arrays[("dogs", 1)])


def test_image_folder_errors(tmp_path):
    from PIL import Image

    with pytest.raises(data.DataError, match="No PNG or JPEG"):
        data.load(str(tmp_path))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(data.DataError, match="differ in shape"):
        data.load(str(tmp_path))


@pytest.mark.parametrize("kwargs", [dict(crop=20, image_size=8, levels=4), dict(image_size=40), dict(crop=14)])
def test_numpy_and_tf_preprocessing_agree(kwargs):
    import tensorflow as tf

    images = np.random.default_rng(3).integers(0, 256, (6, 28, 28, 1)).astype(np.uint8)
    pre = Preprocessing(**kwargs)
    by_numpy = pre.apply_numpy(images)
    by_tf = np.stack([pre.apply_tensor(tf.constant(image), (28, 28, 1)).numpy() for image in images])
    np.testing.assert_array_equal(by_numpy, by_tf)
    assert by_numpy.shape[1:] == pre.output_shape((28, 28, 1))


def test_crop_and_halving_are_the_centre_and_2x2_block_means():
    """By hand: crop 20 of 28 keeps rows and columns 4..23; 28 -> 14 averages 2x2 blocks (rounded)."""
    images = np.random.default_rng(4).integers(0, 256, (3, 28, 28, 1)).astype(np.uint8)
    np.testing.assert_array_equal(Preprocessing(crop=20).apply_numpy(images), images[:, 4:24, 4:24])
    blocks = images.reshape(3, 14, 2, 14, 2, 1).astype(np.float64).mean(axis=(2, 4))
    halved = np.floor(blocks + 0.5).astype(np.uint8)  # every mean is a multiple of 1/4: x.5 rounds up or to even
    got = Preprocessing(image_size=14).apply_numpy(images)
    assert np.abs(got.astype(int) - halved).max() <= 1 and (got == halved)[blocks % 1 != 0.5].all()


def test_levels_keep_the_0_255_scale():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    assert np.unique(Preprocessing(levels=4).apply_numpy(images)).tolist() == [0, 85, 170, 255]


def test_pipeline_batches_conditional_pairs():
    images = np.random.default_rng(4).integers(0, 256, (10, 6, 6, 1)).astype(np.uint8)
    source = data.Source("toy", "train", "memory", (6, 6, 1), 3, 10, images, np.arange(10) % 3)
    (batch, labels), targets = next(iter(make_dataset(source, Preprocessing(), 4, conditional=True)))
    assert batch.dtype.name == "int32" and tuple(batch.shape) == (4, 6, 6, 1)
    np.testing.assert_array_equal(batch.numpy(), targets.numpy())
    np.testing.assert_array_equal(labels.numpy(), [0, 1, 2, 0])


def _labelled_source(count=40, classes=4):
    images = np.random.default_rng(0).integers(0, 256, (count, 4, 4, 1)).astype(np.uint8)
    labels = (np.arange(count) % classes).astype(np.int64)
    return data.Source("toy", "train", "memory", (4, 4, 1), classes, count, images=images, labels=labels)


def test_without_classes_drops_exactly_those_labels():
    source = _labelled_source()
    kept = data.without_classes(source, [1, 3])
    assert kept.num_examples == 20 and set(kept.labels) == {0, 2}
    np.testing.assert_array_equal(kept.images, source.images[source.labels % 2 == 0])
    with pytest.raises(ValueError, match=r"exclude_classes=\[7\]"):
        data.without_classes(source, [7])


def test_perturbed_training_inputs_replace_about_the_rate_and_are_seeded():
    source = _labelled_source(count=200)
    batches = {}
    for rate in (0.0, 0.25):
        dataset = make_dataset(source, Preprocessing(), 200, conditional=False, shuffle=True, repeat=True,
                               seed=3, perturb_rate=rate)
        inputs, targets = next(iter(dataset))
        np.testing.assert_array_equal(inputs.numpy(), targets.numpy())  # the model learns the perturbed data
        batches[rate] = inputs.numpy()
    changed = np.mean(batches[0.25] != batches[0.0])
    assert 0.22 < changed < 0.27  # 0.25 * 255/256 of the sub-pixels get a new value
    again = make_dataset(source, Preprocessing(), 200, conditional=False, shuffle=True, repeat=True, seed=3,
                         perturb_rate=0.25)
    np.testing.assert_array_equal(next(iter(again))[0].numpy(), batches[0.25])
    with pytest.raises(ValueError, match="shuffled training data"):
        make_dataset(source, Preprocessing(), 8, conditional=False, perturb_rate=0.1)
