"""A fine-tuned ``PreNormDETR`` (``DETRHead``) predicts in mmdet's usual
form, which mmdet's visualisation tools draw."""
import mmcv
import numpy as np
import pytest
import torch
from mmdet.datasets import VOCDataset
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer

from mmdet_updetr.testing import get_tiny_cfg

ORI_SHAPE = (60, 80)  # (h, w): the image before the test pipeline's resize
SCALE = 2.  # the pipeline resized it to 120 x 160
BOX = (0.5, 0.25, 0.5, 0.3)  # every query's (cx, cy, w, h), normalised
CAR = VOCDataset.METAINFO['classes'].index('car')


def _model():
    cfg = get_tiny_cfg('updetr/finetune_voc0712_150e.py')
    cfg.model.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    head = model.bbox_head
    with torch.no_grad():
        # Every query finds a car (logit 3, others 0) at BOX.
        head.fc_cls.weight.zero_()
        head.fc_cls.bias.zero_()
        head.fc_cls.bias[CAR] = 3.
        head.fc_reg.weight.zero_()
        head.fc_reg.bias.copy_(torch.logit(torch.tensor(BOX)))
    return model.eval()


def _sample():
    h, w = ORI_SHAPE
    img_shape = (int(h * SCALE), int(w * SCALE))
    return DetDataSample(
        metainfo=dict(
            img_shape=img_shape,
            ori_shape=ORI_SHAPE,
            pad_shape=img_shape,
            batch_input_shape=img_shape,
            scale_factor=(SCALE, SCALE)))


@pytest.fixture(scope='module')
def prediction():
    model = _model()
    sample = _sample()
    inputs = torch.randn(1, 3, *sample.img_shape)
    with torch.no_grad():
        (result, ) = model.predict(inputs, [sample], rescale=True)
    return result


def test_predict_returns_boxes_in_the_original_image(prediction):
    pred = prediction.pred_instances
    assert 'pred_group_instances' not in prediction
    num_queries = 10
    assert len(pred) == num_queries
    assert pred.labels.tolist() == [CAR] * num_queries
    # softmax over 20 classes + background: e^3 / (e^3 + 20).
    expected_score = np.exp(3.) / (np.exp(3.) + 20)
    torch.testing.assert_close(
        pred.scores, torch.full((num_queries, ), float(expected_score)))
    h, w = ORI_SHAPE
    cx, cy, bw, bh = BOX
    expected = torch.tensor([(cx - bw / 2) * w, (cy - bh / 2) * h,
                             (cx + bw / 2) * w, (cy + bh / 2) * h])
    torch.testing.assert_close(pred.bboxes, expected.expand(num_queries, 4))


def test_det_local_visualizer_draws_the_detections(prediction):
    visualizer = DetLocalVisualizer.get_instance('test_updetr_finetune_vis')
    visualizer.dataset_meta = VOCDataset.METAINFO
    image = np.zeros((*ORI_SHAPE, 3), dtype=np.uint8)
    visualizer.add_datasample(
        'finetuned',
        image,
        prediction,
        draw_gt=False,
        show=False,
        pred_score_thr=0.3)
    drawn = visualizer.get_image()
    assert drawn.shape == image.shape
    x1, y1, x2, y2 = prediction.pred_instances.bboxes[0].round().int()
    # The box's left and right edges are drawn, the image's far corner is
    # not.
    mid_y = int((y1 + y2) // 2)
    assert drawn[mid_y, x1 - 1:x1 + 2].any()
    assert drawn[mid_y, x2 - 1:x2 + 2].any()
    assert not drawn[-1, -1].any() and not drawn[mid_y, 2].any()
    assert not drawn[mid_y, (x1 + x2) // 2].any()  # inside: not filled


def test_det_inferencer_runs_the_image_demo(tmp_path):
    """``DetInferencer`` (mmdet's ``demo/image_demo.py``) with a fine-tuning
    config and checkpoint draws the detections."""
    from mmdet.apis import DetInferencer
    cfg = get_tiny_cfg('updetr/finetune_voc0712_150e.py')
    cfg.model.init_cfg = None
    cfg.dump(str(tmp_path / 'config.py'))
    torch.save(
        dict(
            state_dict=_model().state_dict(),
            meta=dict(dataset_meta=VOCDataset.METAINFO)),
        tmp_path / 'model.pth')
    image = np.zeros((*ORI_SHAPE, 3), dtype=np.uint8)
    mmcv.imwrite(image, str(tmp_path / 'demo.png'))
    inferencer = DetInferencer(
        model=str(tmp_path / 'config.py'),
        weights=str(tmp_path / 'model.pth'),
        device='cpu',
        show_progress=False)
    out = inferencer(
        str(tmp_path / 'demo.png'),
        out_dir=str(tmp_path / 'out'),
        pred_score_thr=0.3)
    pred = out['predictions'][0]
    assert pred['labels'] == [CAR] * 10
    h, w = ORI_SHAPE
    cx, cy, bw, bh = BOX
    assert pred['bboxes'][0] == pytest.approx([(cx - bw / 2) * w,
                                               (cy - bh / 2) * h,
                                               (cx + bw / 2) * w,
                                               (cy + bh / 2) * h],
                                              abs=1e-3)
    drawn = mmcv.imread(str(tmp_path / 'out' / 'vis' / 'demo.png'))
    assert drawn.shape == image.shape and drawn.any()
