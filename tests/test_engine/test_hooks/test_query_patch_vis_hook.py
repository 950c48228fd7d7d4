"""QueryPatchVisHook draws Fig. 7 into the visualizer's backends."""
import glob
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData
from mmengine.visualization import Visualizer

from mmdet_updetr.engine import QueryPatchVisHook
from mmdet_updetr.visualization import PATCH_COLORS

H, W = 80, 100


def output(tmp_path, name):
    """An output for a gray 100 x 80 image resized by 2: patch 0's true box
    [10, 10, 40, 40] (given in the resized image), its best box
    [50, 20, 90, 60]."""
    img_path = str(tmp_path / f'{name}.png')
    cv2.imwrite(img_path, np.full((H, W, 3), 128, np.uint8))
    data_sample = DetDataSample(
        metainfo=dict(img_path=img_path, scale_factor=(2.0, 2.0)))
    data_sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[20., 20., 80., 80.]])))
    data_sample.pred_group_instances = InstanceData(
        bboxes=torch.tensor([[50., 20., 90., 60.]]),
        scores=torch.tensor([0.75]),
        labels=torch.tensor([0]))
    return data_sample


@pytest.fixture
def visualizer(tmp_path):
    return Visualizer(
        name=f'vis_{tmp_path.name}',
        vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path / 'vis'))


def test_draws_the_first_images_at_every_interval(tmp_path, visualizer):
    hook = QueryPatchVisHook(interval=2, num_images=1)
    outputs = [output(tmp_path, 'first'), output(tmp_path, 'second')]
    for epoch in (1, 2, 3, 4):
        runner = SimpleNamespace(epoch=epoch, visualizer=visualizer)
        hook.before_val_epoch(runner)
        hook.after_val_iter(runner, 0, {}, outputs[:1])
        hook.after_val_iter(runner, 1, {}, outputs[1:])
    files = sorted(
        osp.basename(f)
        for f in glob.glob(str(tmp_path / 'vis/vis_data/vis_image/*.png')))
    # Only the first image, only at epochs 2 and 4.
    assert files == ['query_patch_first_2.png', 'query_patch_first_4.png']
    canvas = cv2.imread(
        str(tmp_path / 'vis/vis_data/vis_image/query_patch_first_4.png'))
    # The image, then a column of H // k = 80 pixels for the one patch.
    assert canvas.shape == (H, W + H, 3)
    color = list(PATCH_COLORS[0])
    # The true box, rescaled to the original image: its left side (1 px).
    assert canvas[25, 10].tolist() == color
    assert canvas[25, 12].tolist() == [128, 128, 128]
    # The best box: its left side (3 px) and bottom.
    assert canvas[40, 50].tolist() == color
    assert canvas[60, 70].tolist() == color
    # The patch's frame in the column.
    assert canvas[1, W + 1].tolist() == color


def test_invalid_arguments():
    with pytest.raises(ValueError, match='interval'):
        QueryPatchVisHook(interval=0)
