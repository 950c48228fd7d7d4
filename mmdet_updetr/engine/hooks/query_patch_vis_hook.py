# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Pictures of the pretext while it trains."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import get_box_tensor
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet_updetr.visualization import draw_query_patch_detection


@HOOKS.register_module()
class QueryPatchVisHook(Hook):
    """Draw the query-patch detection (Fig. 7) of a few validation images.

    At every validation whose epoch is a multiple of ``interval``, the
    first ``num_images`` images of the validation set (the main process's
    share of them, in order: the same images every time) are drawn with
    :func:`~mmdet_updetr.visualization.draw_query_patch_detection` (each
    patch, its true box thin and its group's best box thick, in one colour
    per patch) and given to the runner's visualizer as
    ``query_patch_<file name>`` at step ``epoch``; its backends store them
    (``LocalVisBackend``: ``<work_dir>/<timestamp>/vis_data/vis_image/
    query_patch_<name>_<epoch>.png``; TensorBoard when
    ``TensorboardVisBackend`` is configured). The pictures come from the
    validation's own outputs: no extra forward pass.

    Args:
        interval (int): Draw at validations of epochs that are multiples of
            it (validation itself runs every ``train_cfg.val_interval``
            epochs). Defaults to 1.
        num_images (int): Number of validation images drawn. Defaults to 3.

    Examples:
        >>> custom_hooks = [dict(type='QueryPatchVisHook', interval=10)]
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 1, num_images: int = 3) -> None:
        if interval < 1 or num_images < 0:
            raise ValueError('QueryPatchVisHook: interval must be >= 1 and '
                             f'num_images >= 0, got {interval}, {num_images}')
        self.interval = interval
        self.num_images = num_images
        self._num_drawn = 0

    def before_val_epoch(self, runner: Runner) -> None:
        """Start counting the drawn images anew."""
        self._num_drawn = 0

    def after_val_iter(
            self,
            runner: Runner,
            batch_idx: int,
            data_batch: Optional[dict] = None,
            outputs: Optional[Sequence[DetDataSample]] = None) -> None:
        """Draw the batch's images while fewer than ``num_images`` are.

        Args:
            runner (Runner): The runner of the validation.
            batch_idx (int): The index of the batch.
            data_batch (dict, optional): The batch from the dataloader.
            outputs (Sequence[:obj:`DetDataSample`]): The model's outputs,
                with ``pred_group_instances`` and ``gt_instances``.
        """
        if runner.epoch % self.interval or not outputs:
            return
        for data_sample in outputs:
            if self._num_drawn >= self.num_images:
                return
            self._num_drawn += 1
            name = osp.splitext(osp.basename(data_sample.img_path))[0]
            runner.visualizer.add_image(
                f'query_patch_{name}',
                self.draw(data_sample)[..., ::-1],  # BGR -> RGB
                step=runner.epoch)

    @staticmethod
    def draw(data_sample: DetDataSample):
        """The picture of one output, BGR, at the image's original size.

        Args:
            data_sample (:obj:`DetDataSample`): With ``img_path``,
                ``scale_factor``, ``gt_instances`` (the patches' boxes in
                the resized image) and ``pred_group_instances`` (in the
                original image).

        Returns:
            np.ndarray: BGR uint8 canvas, see
            :func:`draw_query_patch_detection`.
        """
        img = mmcv.imread(data_sample.img_path, channel_order='bgr')
        gt_boxes = get_box_tensor(data_sample.gt_instances.bboxes).float()
        scale = gt_boxes.new_tensor(data_sample.scale_factor).repeat(2)
        pred = data_sample.pred_group_instances.detach().cpu()
        return draw_query_patch_detection(img, pred.bboxes.numpy(),
                                          pred.scores.tolist(),
                                          (gt_boxes.cpu() / scale).numpy())
