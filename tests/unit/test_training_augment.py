"""Augmentation: shapes and ranges preserved, deterministic under a seed, and actually random across seeds."""

import numpy as np
import pytest
import tensorflow as tf

from classpulse_training.augment import AugmentConfig, augment_batch

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def faces() -> tf.Tensor:
    rng = np.random.default_rng(3)
    return tf.constant(rng.integers(0, 256, (16, 48, 48, 1)).astype(np.float32))


def test_shape_dtype_and_range(faces):
    out = augment_batch(faces, tf.constant([1, 2]))
    assert out.shape == faces.shape and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 255.0


def test_same_seed_same_output(faces):
    first = augment_batch(faces, tf.constant([5, 9])).numpy()
    np.testing.assert_array_equal(augment_batch(faces, tf.constant([5, 9])).numpy(), first)


def test_different_seeds_differ(faces):
    a = augment_batch(faces, tf.constant([5, 9])).numpy()
    b = augment_batch(faces, tf.constant([5, 10])).numpy()
    assert np.abs(a - b).mean() > 1.0


def test_identity_config_changes_nothing(faces):
    identity = AugmentConfig(
        flip=False, max_rotation_deg=0.0, max_shift=0.0, scale_range=(1.0, 1.0),
        max_brightness=0.0, contrast_range=(1.0, 1.0), erase_probability=0.0,
    )
    np.testing.assert_allclose(augment_batch(faces, tf.constant([0, 0]), identity).numpy(), faces.numpy(), atol=1e-3)


def test_flip_only_mirrors_some_images():
    image = np.zeros((64, 48, 48, 1), np.float32)
    image[:, :, :24] = 255.0  # left half white
    flip_only = AugmentConfig(
        max_rotation_deg=0.0, max_shift=0.0, scale_range=(1.0, 1.0),
        max_brightness=0.0, contrast_range=(1.0, 1.0), erase_probability=0.0,
    )
    out = augment_batch(tf.constant(image), tf.constant([1, 1]), flip_only).numpy()
    left_white = out[:, 24, 0, 0] > 128
    assert 10 < left_white.sum() < 54  # about half of the 64 were mirrored
    np.testing.assert_allclose(out[~left_white], image[~left_white][:, :, ::-1], atol=1e-3)


def test_mixup_blends_images_labels_and_weights_alike(faces):
    from classpulse_training.augment import mix_pairs

    labels = tf.one_hot(np.arange(16), 16)  # one class a face, so each label tells its lambda apart
    weights = tf.constant(np.linspace(0.5, 2.0, 16, dtype=np.float32))
    x, y, w = mix_pairs(faces, labels, weights, tf.constant([4, 2]), alpha=0.4)
    lam = tf.reduce_max(y, axis=1).numpy()  # the face's own label keeps the larger share
    assert np.all(lam >= 0.5 - 1e-6) and np.all(lam <= 1.0) and lam.std() > 0.01
    np.testing.assert_allclose(tf.reduce_sum(y, axis=1).numpy(), 1.0, atol=1e-6)
    assert np.all(np.argmax(y.numpy(), axis=1) == np.arange(16))
    assert x.shape == faces.shape and float(tf.reduce_max(x)) <= 255.0 and float(tf.reduce_min(x)) >= 0.0
    # One partner per face, the same for image, label and weight: face i = lam x_i + (1 - lam) x_partner.
    own, others = faces.numpy(), faces.numpy()
    residual = [
        [np.abs(x[i].numpy() - lam[i] * own[i] - (1 - lam[i]) * others[j]).max() for j in range(16)] for i in range(16)
    ]
    partner = [int(np.argmin(row)) for row in residual]
    blended = lam < 0.98  # a face with lambda ~1 barely shows its partner, which then cannot be told apart
    assert blended.sum() >= 8 and all(partner[i] != i for i in np.flatnonzero(blended))
    offsets = {(partner[i] - i) % 16 for i in np.flatnonzero(blended)}
    assert len(offsets) == 1  # one rotation of the batch: every face is some face's partner exactly once
    partner = (np.arange(16) + offsets.pop()) % 16
    expected_w = lam * weights.numpy() + (1 - lam) * weights.numpy()[partner]
    np.testing.assert_allclose(w.numpy(), expected_w, rtol=1e-5)
    again = mix_pairs(faces, labels, weights, tf.constant([4, 2]), alpha=0.4)[0].numpy()
    np.testing.assert_array_equal(again, x.numpy())


def _fine_detail(images: np.ndarray) -> float:
    return float(np.abs(np.diff(images, axis=2)).mean())


def test_low_resolution_faces_lose_fine_detail_and_nothing_else_changes(faces):
    # A small, blurred face enlarged back to 48 px, as the detector crops one at the back of a room: its pixel-to-
    # pixel detail is gone; the faces it is not applied to, and every other augmentation, are as without it.
    plain = AugmentConfig()
    always = AugmentConfig(low_res_probability=1.0, low_res_side=(16.0, 16.0), low_res_blur=(1.0, 1.0))
    seed = tf.constant([5, 9])
    before, after = augment_batch(faces, seed, plain).numpy(), augment_batch(faces, seed, always).numpy()
    assert after.shape == before.shape and after.min() >= 0.0 and after.max() <= 255.0
    assert _fine_detail(after) < 0.3 * _fine_detail(before)
    np.testing.assert_array_equal(augment_batch(faces, seed, always).numpy(), after)  # deterministic
    never = AugmentConfig(low_res_probability=1e-9)
    np.testing.assert_array_equal(augment_batch(faces, seed, never).numpy(), before)


def test_low_resolution_blur_is_a_whole_gaussian_however_wide(faces):
    # The blur family's frames are blurred by sigma up to 2.5 px, which is what a small face's crop carries: the
    # kernel must reach 2 sigma of the widest blur drawn, not stop at a fixed width and blur less than asked.
    cv2 = pytest.importorskip("cv2")
    only_blur = AugmentConfig(
        flip=False, max_rotation_deg=0.0, max_shift=0.0, scale_range=(1.0, 1.0), max_brightness=0.0,
        contrast_range=(1.0, 1.0), erase_probability=0.0,
        low_res_probability=1.0, low_res_side=(48.0, 48.0), low_res_blur=(2.5, 2.5),
    )
    blurred = augment_batch(faces, tf.constant([5, 9]), only_blur).numpy()
    reference = np.stack([cv2.GaussianBlur(face, (0, 0), 2.5, borderType=cv2.BORDER_REFLECT) for face in faces.numpy()])
    interior = (slice(None), slice(8, -8), slice(8, -8))  # the borders are padded differently
    assert np.abs(blurred[..., 0][interior] - reference[interior]).mean() < 1.0  # a kernel of radius 3: 3.3


def _only_low_resolution(**low_res) -> AugmentConfig:
    """Every other augmentation off: the faces come out as the low-resolution step leaves them."""
    return AugmentConfig(
        flip=False, max_rotation_deg=0.0, max_shift=0.0, scale_range=(1.0, 1.0), max_brightness=0.0,
        contrast_range=(1.0, 1.0), erase_probability=0.0, low_res_probability=1.0, low_res_blur=(0.0, 0.0), **low_res,
    )


def test_low_resolution_jpeg_is_what_libjpeg_makes_of_the_small_face(faces):
    # A face of 24 px in a frame sent at quality 20 reaches the detector as a few 8x8 JPEG blocks: the augmentation
    # codes the small face as ingest would, at a quality drawn per face, then enlarges it back.
    cv2 = pytest.importorskip("cv2")
    seed = tf.constant([5, 9])
    plain = augment_batch(faces, seed, _only_low_resolution(low_res_side=(48.0, 48.0))).numpy()
    coded = augment_batch(faces, seed, _only_low_resolution(low_res_side=(48.0, 48.0), low_res_jpeg_quality=(20, 20)))
    coded = coded.numpy()
    reference = np.stack([
        cv2.imdecode(cv2.imencode(".jpg", np.round(face).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 20])[1], 0)
        for face in plain[..., 0]
    ])
    assert np.abs(coded[..., 0] - plain[..., 0]).mean() > 10.0  # random pixels lose a lot at quality 20
    assert np.abs(coded[..., 0] - reference).mean() < 1.0  # and what they lose is libjpeg's loss, not another one
    assert coded.min() >= 0.0 and coded.max() <= 255.0


def test_low_resolution_jpeg_quality_is_drawn_per_face(faces):
    seed = tf.constant([5, 9])
    plain = augment_batch(faces, seed, _only_low_resolution(low_res_side=(48.0, 48.0))).numpy()
    spread = _only_low_resolution(low_res_side=(48.0, 48.0), low_res_jpeg_quality=(10, 95))
    loss = np.abs(augment_batch(faces, seed, spread).numpy() - plain).mean(axis=(1, 2, 3))
    assert loss.max() > 2 * loss.min()  # some faces coded hard, others barely
    np.testing.assert_array_equal(augment_batch(faces, seed, spread).numpy(), augment_batch(faces, seed, spread).numpy())


def test_low_resolution_noise_has_the_sigma_drawn():
    gray = tf.fill([64, 48, 48, 1], 128.0)  # mid-gray: no clipping, so the noise shows whole
    seed = tf.constant([5, 9])
    noisy = augment_batch(gray, seed, _only_low_resolution(low_res_side=(48.0, 48.0), low_res_noise=(10.0, 10.0)))
    deviation = (noisy.numpy() - 128.0).std(axis=(1, 2, 3))
    np.testing.assert_allclose(deviation, 10.0, rtol=0.15)
    spread = augment_batch(gray, seed, _only_low_resolution(low_res_side=(48.0, 48.0), low_res_noise=(0.0, 16.0)))
    deviation = (spread.numpy() - 128.0).std(axis=(1, 2, 3))
    assert deviation.min() < 4.0 and deviation.max() > 12.0  # one sigma a face, across the range


def test_low_resolution_noise_and_jpeg_change_only_the_faces_made_small(faces):
    # Turning noise and JPEG on leaves every draw of the low-resolution step as it was (the size, blur and share of
    # faces): the faces it passes over are exactly as before, so existing configs train on the same batches.
    seed = tf.constant([5, 9])
    base = dict(low_res_probability=0.5, low_res_side=(16.0, 48.0), low_res_blur=(0.0, 2.0))
    plain = augment_batch(faces, seed, AugmentConfig()).numpy()
    before = augment_batch(faces, seed, AugmentConfig(**base)).numpy()
    after = augment_batch(
        faces, seed, AugmentConfig(**base, low_res_noise=(0.0, 14.0), low_res_jpeg_quality=(15, 90))
    ).numpy()
    made_small = np.any(before != plain, axis=(1, 2, 3))
    assert 0 < made_small.sum() < len(made_small)
    np.testing.assert_array_equal(after[~made_small], before[~made_small])
    assert np.all(np.any(after[made_small] != before[made_small], axis=(1, 2, 3)))
    np.testing.assert_array_equal(
        augment_batch(faces, seed, AugmentConfig(low_res_noise=(0.0, 14.0), low_res_jpeg_quality=(15, 90))).numpy(),
        plain,
    )  # low resolution off: noise and JPEG, which act on the small faces, do nothing


def test_model_card_names_the_noise_and_jpeg_the_small_faces_carried():
    from classpulse_training.model_card import _augmentation

    augment = {**AugmentConfig(low_res_probability=0.5, low_res_side=(16.0, 48.0), low_res_blur=(0.0, 2.0)).__dict__}
    assert "noise" not in _augmentation(augment) and "JPEG" not in _augmentation(augment)
    described = _augmentation({**augment, "low_res_noise": (0.0, 14.0), "low_res_jpeg_quality": (15, 90)})
    assert "noise sigma 0-14 gray levels" in described and "JPEG at quality 15-90" in described
