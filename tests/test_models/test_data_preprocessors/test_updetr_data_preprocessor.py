import copy

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmdet_updetr.datasets  # noqa: F401  (registers the transforms)
from mmdet_updetr.augmentation import (AUG_COL, IDENTITY_AUG_PARAMS,
                                       NUM_AUG_PARAMS, QueryPatchAugmentation)
from mmdet_updetr.models.data_preprocessors import UPDETRDataPreprocessor

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def make_sample(num_patches=3, bgr=(10, 20, 30), size=32, aug=True):
    """A packed sample whose patches are one constant BGR colour."""
    sample = DetDataSample()
    patches = torch.tensor(bgr, dtype=torch.uint8).view(1, 3, 1, 1)
    sample.query_patches = patches.repeat(num_patches, 1, size, size)
    if aug:
        sample.query_patch_aug = torch.tensor(IDENTITY_AUG_PARAMS).repeat(
            num_patches, 1)
    sample.set_metainfo(dict(img_shape=(40, 50), ori_shape=(40, 50)))
    return dict(
        inputs=torch.zeros(3, 40, 50, dtype=torch.uint8), data_samples=sample)


def build(**kwargs):
    cfg = dict(mean=MEAN, std=STD, bgr_to_rgb=True)
    cfg.update(kwargs)
    return UPDETRDataPreprocessor(**cfg)


@pytest.mark.parametrize('device', DEVICES)
def test_shape_dtype_device_and_normalised_values(device):
    preprocessor = build().to(device)
    batch = pseudo_collate([make_sample(), make_sample(bgr=(0, 128, 255))])
    out = preprocessor(batch, training=True)
    assert out['inputs'].shape == (2, 3, 40, 50)
    patches = torch.stack([s.query_patches for s in out['data_samples']])
    assert patches.shape == (2, 3, 3, 32, 32)
    assert patches.dtype == torch.float32
    assert patches.device.type == device
    # RGB order: channel 0 is the red value 30 (resp. 255).
    for sample_patches, (r, g, b) in zip(patches, [(30, 20, 10),
                                                   (255, 128, 0)]):
        for channel, value in enumerate((r, g, b)):
            expected = (value - MEAN[channel]) / STD[channel]
            torch.testing.assert_close(sample_patches[:, channel].cpu(),
                                       torch.full((3, 32, 32), expected))


def test_bgr_kept_when_the_images_stay_bgr():
    preprocessor = build(bgr_to_rgb=False, mean=[1, 2, 3], std=[2, 2, 2])
    out = preprocessor(pseudo_collate([make_sample()]))
    values = out['data_samples'][0].query_patches[0, :, 0, 0]
    torch.testing.assert_close(values, torch.tensor([4.5, 9.0, 13.5]))


def test_augmentation_is_applied_in_rgb():
    sample = make_sample(num_patches=2, bgr=(0, 0, 255))  # pure red
    aug = sample['data_samples'].query_patch_aug
    aug[0, AUG_COL['jitter']] = 1
    aug[0, AUG_COL['hue']] = 0.5  # red -> cyan
    aug[1, AUG_COL['gray']] = 1
    preprocessor = build(mean=[0, 0, 0], std=[1, 1, 1])
    out = preprocessor(pseudo_collate([sample]), training=False)
    patches = out['data_samples'][0].query_patches
    torch.testing.assert_close(patches[0, :, 5, 5],
                               torch.tensor([0.0, 255.0, 255.0]))
    torch.testing.assert_close(patches[1, :, 5, 5],
                               torch.full((3, ), 0.299 * 255))


def test_no_augmentation_parameters_means_no_augmentation():
    preprocessor = build(mean=[0, 0, 0], std=[1, 1, 1])
    out = preprocessor(pseudo_collate([make_sample(aug=False)]))
    values = out['data_samples'][0].query_patches[0, :, 0, 0]
    torch.testing.assert_close(values, torch.tensor([30.0, 20.0, 10.0]))
    mixed = pseudo_collate([make_sample(aug=False), make_sample()])
    with pytest.raises(ValueError, match='query_patch_aug'):
        preprocessor(mixed)


def test_batch_needs_one_number_of_patches():
    batch = pseudo_collate([make_sample(3), make_sample(4)])
    with pytest.raises(ValueError, match='same number'):
        build()(batch)
    samples = [make_sample(), make_sample()]
    del samples[1]['data_samples'].query_patches
    with pytest.raises(ValueError, match='no `query_patches`'):
        build()(pseudo_collate(samples))


def test_samples_without_patches_pass_through():
    sample = make_sample()
    del sample['data_samples'].query_patches
    out = build()(pseudo_collate([sample]))
    assert 'query_patches' not in out['data_samples'][0]


def test_pipeline_to_preprocessor_keeps_box_patch_pairs(tmp_path):
    """Patch i (de-normalised) looks like the resized image at box i."""
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS
    rng = np.random.default_rng(0)
    for i, (height, width) in enumerate([(150, 200), (180, 140)]):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(tmp_path / f'{i}.png'), img)
    pipeline = [
        dict(type='SafeLoadImageFromFile'),
        dict(type='QueryPatchTransform', num_patches=5, augment=False),
        dict(type='RandomChoiceResize', scales=[(320, 600)], keep_ratio=True),
        dict(type='PackUPDETRInputs'),
    ]
    dataset = DATASETS.build(
        dict(
            type='UnlabeledImageDataset',
            data_root=str(tmp_path),
            pipeline=pipeline))
    np.random.seed(0)
    out = build()(pseudo_collate([dataset[0], dataset[1]]), training=True)
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    for img, sample in zip(out['inputs'], out['data_samples']):
        assert sample.query_patches.shape == (5, 3, 128, 128)
        boxes = sample.gt_instances.bboxes
        assert isinstance(boxes, torch.Tensor) and boxes.shape == (5, 4)
        assert sample.gt_instances.labels.tolist() == [0] * 5
        img = (img * std.view(3, 1, 1) + mean.view(3, 1, 1)).permute(1, 2, 0)
        patches = (sample.query_patches * std.view(3, 1, 1) +
                   mean.view(3, 1, 1)).permute(0, 2, 3, 1)
        crops = []
        for x1, y1, x2, y2 in boxes.round().int().tolist():
            crops.append(
                cv2.resize(
                    img[y1:y2, x1:x2].numpy(), (128, 128),
                    interpolation=cv2.INTER_LINEAR))
        errors = np.array(
            [[np.abs(crop - patch.numpy()).mean() for crop in crops]
             for patch in patches])
        assert errors.diagonal().max() < 6
        assert (errors.argmin(axis=1) == np.arange(5)).all()


def test_aug_column_count():
    assert NUM_AUG_PARAMS == 12 == len(IDENTITY_AUG_PARAMS)


def test_bf16_autocast_gives_the_fp32_result():
    """The preprocessor runs inside the optimizer wrapper's autocast (e.g.
    ``--amp``): the patch augmentation used to fail there (index put of a
    bf16 blur into the float32 batch); it runs in float32 and gives the
    very same patches and images."""
    samples = []
    np.random.seed(0)
    augmentation = QueryPatchAugmentation(blur_prob=0.9)
    for i in range(2):
        sample = make_sample(num_patches=6, bgr=(40 * i, 90, 200))
        rng = np.random.default_rng(i)
        sample['data_samples'].query_patches = torch.from_numpy(
            rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8))
        sample['inputs'] = torch.from_numpy(
            rng.integers(0, 256, (3, 40, 50), dtype=np.uint8))
        sample['data_samples'].query_patch_aug = torch.from_numpy(
            augmentation.draw(6))
        samples.append(sample)
    params = torch.cat([s['data_samples'].query_patch_aug for s in samples])
    assert params[:, AUG_COL['blur']].sum() > 0
    assert params[:, AUG_COL['jitter']].sum() > 0
    preprocessor = build()
    expected = preprocessor(pseudo_collate(copy.deepcopy(samples)), True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = preprocessor(pseudo_collate(copy.deepcopy(samples)), True)
    assert torch.equal(out['inputs'], expected['inputs'])
    for sample, ref in zip(out['data_samples'], expected['data_samples']):
        assert sample.query_patches.dtype == torch.float32
        assert torch.equal(sample.query_patches, ref.query_patches)
