import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from demo.oneshot_demo import MATCH_COLOR, QUERY_COLOR, main, run
from mmdet_updetr.testing import class_colour, tiny_oneshot_cfg

QUERY_BGR = class_colour('dog')


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    """Config file, checkpoint, a test image and a query crop file."""
    tmp = tmp_path_factory.mktemp('oneshot_demo')
    cfg = tiny_oneshot_cfg(tmp)
    config = osp.join(tmp, 'oneshot_tiny.py')
    cfg.dump(config)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = osp.join(tmp, 'oneshot_tiny.pth')
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': dict(dataset_meta=dict(classes=('dog', )))
        }, checkpoint)
    img = osp.join(tmp, 'VOCdevkit', 'VOC2007', 'JPEGImages', '000012.jpg')
    query = osp.join(tmp, 'query.png')
    cv2.imwrite(query, np.full((30, 20, 3), QUERY_BGR, np.uint8))
    return config, checkpoint, img, query


def test_draws_the_best_matches_and_the_query(tiny_model, tmp_path):
    config, checkpoint, img, query = tiny_model
    out = str(tmp_path / 'result.png')
    matches = run(
        config, checkpoint, img, query, score_thr=0.0, topk=3, out=out)
    assert len(matches) == 3
    scores = matches.scores.tolist()
    assert scores == sorted(scores, reverse=True)
    image = cv2.imread(img)
    height, width = image.shape[:2]
    boxes = matches.bboxes
    # Boxes are in the original image's pixels (the model saw it resized).
    assert (boxes >= 0).all() and (boxes[:, 2]
                                   <= width).all() and (boxes[:, 3]
                                                        <= height).all()
    canvas = cv2.imread(out)
    assert canvas.shape == (height, width + height, 3)
    x1, y1, x2, y2 = (int(round(v)) for v in boxes[-1].tolist())
    # The lowest-scoring box's bottom-right corner (under no text; a 2 px
    # line still shows inside the image when the box touches its border).
    assert tuple(canvas[min(y2, height - 1), min(x2, width - 1)]) == \
        MATCH_COLOR
    # The query, scaled into the column on the right, in a green frame.
    assert tuple(canvas[10, width + 8]) == QUERY_BGR
    assert tuple(canvas[2, width + 2]) == QUERY_COLOR


def test_cli_crops_the_query_box_and_applies_the_threshold(
        tiny_model, tmp_path, capsys):
    config, checkpoint, img, _ = tiny_model
    out = str(tmp_path / 'none.png')
    # Crop the query from the image itself; no score reaches 1.01.
    main([
        config, checkpoint, img, img, '--query-bbox', '10', '5', '40', '30',
        '--score-thr', '1.01', '--out', out
    ])
    assert '0 matches (score >= 1.01) drawn to' in capsys.readouterr().out
    canvas, image = cv2.imread(out), cv2.imread(img)
    width = image.shape[1]
    # Nothing drawn on the image; the crop (25 x 30 px) is in the column.
    np.testing.assert_array_equal(canvas[:, :width], image)
    scale = (image.shape[0] - 8) / 30
    tile = cv2.resize(image[5:30, 10:40], (int(30 * scale), int(25 * scale)))
    np.testing.assert_array_equal(
        canvas[4:4 + tile.shape[0], width + 4:width + 4 + tile.shape[1]], tile)


def test_bad_inputs_are_named_before_the_model_loads(tiny_model, tmp_path):
    """The checkpoint path is never opened: the inputs are checked first."""
    config, _, img, query = tiny_model
    missing = str(tmp_path / 'no_query.png')
    never = str(tmp_path / 'never_read.pth')
    with pytest.raises(FileNotFoundError, match='QUERY_IMG.*no_query.png'):
        run(config, never, img, missing)
    with pytest.raises(FileNotFoundError, match='IMG.*no_img.jpg'):
        run(config, never, str(tmp_path / 'no_img.jpg'), query)
    not_an_image = tmp_path / 'query.txt'
    not_an_image.write_text('not an image')
    with pytest.raises(ValueError, match='QUERY_IMG: cannot decode'):
        run(config, never, img, str(not_an_image))
    # The query file is 20 x 30 (w x h).
    for bbox in ([0, 0, 21, 30], [5, 5, 5, 9], [-1, 0, 10, 10]):
        with pytest.raises(ValueError, match=r'--query-bbox.*\(20 x 30\)'):
            run(config, never, img, query, query_bbox=bbox)
