import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmdet_updetr.datasets import OneShotVOCDataset
from mmdet_updetr.datasets.oneshot_voc import episode_seed
from mmdet_updetr.testing import class_colour, write_tiny_voc

REPO = Path(__file__).resolve().parents[2]
UNSEEN = ('aeroplane', 'cat', 'cow', 'sheep')
CLASSES = OneShotVOCDataset.METAINFO['classes']
#: Our easier query pool (CoAE's keeps every box).
OURS = dict(query_min_size=32, query_exclude_difficult=True)

# (class, xmin, ymin, xmax, ymax, difficult) in VOC's 1-based pixels.
TRAINVAL = {
    # Three dogs here and one elsewhere: a query "from anywhere" would come
    # from this image 3 times in 4.
    't0': [('dog', 11, 11, 50, 50, 0), ('dog', 61, 11, 100, 50, 0),
           ('dog', 111, 11, 150, 50, 0), ('cat', 11, 61, 60, 110, 0)],
    't1': [('dog', 21, 21, 80, 90, 0), ('person', 91, 11, 140, 100, 0)],
    't2': [('cat', 21, 21, 100, 100, 0)],  # unseen only: dropped
    # A difficult person and a tiny car: neither is a query; the car is
    # this image's candidate (there are other cars).
    't3': [('person', 11, 11, 70, 100, 1), ('car', 101, 21, 110, 30, 0)],
    't4': [('car', 11, 11, 90, 70, 0), ('aeroplane', 96, 11, 155, 90, 0)],
    't5': [('car', 21, 31, 100, 100, 0), ('person', 111, 11, 150, 110, 0)],
}
TEST = {
    'e0': [('dog', 11, 11, 60, 60, 0), ('cat', 71, 11, 120, 60, 1),
           ('aeroplane', 11, 71, 150, 115, 0)],
    'e1': [('dog', 11, 11, 60, 60, 0), ('dog', 71, 11, 150, 80, 0),
           ('cat', 11, 71, 60, 115, 0)],
    'e2': [('cat', 11, 11, 90, 90, 0), ('aeroplane', 96, 11, 155, 100, 0)],
    'e3': [('dog', 31, 31, 130, 100, 0)],
}


def write_voc(root: Path, splits: dict) -> None:
    """A VOC2007-format set with the given boxes, each filled with its
    class colour. The '.jpg' files hold PNG data (exact pixels; OpenCV
    decodes by content)."""
    year = root / 'VOC2007'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (year / sub).mkdir(parents=True, exist_ok=True)
    for split, images in splits.items():
        (year / 'ImageSets/Main' / f'{split}.txt').write_text(''.join(
            f'{i}\n' for i in images))
        for img_id, boxes in images.items():
            img = np.full((120, 160, 3), 20, np.uint8)
            objects = ''
            for name, x1, y1, x2, y2, diff in boxes:
                img[y1 - 1:y2, x1 - 1:x2] = class_colour(name)
                objects += (
                    f'<object><name>{name}</name><difficult>{diff}'
                    f'</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>'
                    f'<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>')
            ok, buf = cv2.imencode('.png', img)
            (year / 'JPEGImages' / f'{img_id}.jpg').write_bytes(buf.tobytes())
            (year / 'Annotations' / f'{img_id}.xml').write_text(
                f'<annotation><size><width>160</width><height>120</height>'
                f'<depth>3</depth></size>{objects}</annotation>')


def voc_cfg(root, split, test_mode=False):
    return dict(
        type='VOCDataset',
        data_root=str(root),
        ann_file=f'VOC2007/ImageSets/Main/{split}.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=test_mode)


def build(root, test_mode=False, pipeline=(), **kwargs):
    init_default_scope('mmdet')
    split = 'test' if test_mode else 'trainval'
    return OneShotVOCDataset(
        dataset=voc_cfg(root, split, test_mode),
        test_mode=test_mode,
        pipeline=list(pipeline),
        **kwargs)


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('oneshot_voc')
    write_voc(root, dict(trainval=TRAINVAL, test=TEST))
    return root


def written_boxes(img_id, name, difficult=None):
    """0-based boxes (as mmdet's VOCDataset reads them) of class ``name``."""
    boxes = {**TRAINVAL, **TEST}[img_id]
    return [[x1 - 1, y1 - 1, x2 - 1, y2 - 1] for n, x1, y1, x2, y2, d in boxes
            if n == name and (difficult is None or d == difficult)]


def training_pairs(dataset, rounds):
    np.random.seed(0)
    return [dataset[i] for _ in range(rounds) for i in range(len(dataset))]


def _pool(dataset):
    return {(dataset.img_infos[i]['img_id'], tuple(b.tolist()))
            for i, b in zip(dataset.pool_imgs, dataset.pool_bboxes)}


def test_query_pool_is_every_box_as_coae(voc_root):
    pool = _pool(build(voc_root))
    assert ('t3', (10., 10., 69., 99.)) in pool  # difficult person
    assert ('t3', (100., 20., 109., 29.)) in pool  # 9 x 9 car
    assert len(pool) == 13
    test_pool = _pool(build(voc_root, test_mode=True))
    assert ('e0', (70., 10., 119., 59.)) in test_pool  # difficult cat
    assert len(test_pool) == 9  # every box of the test images


def test_our_query_pool_leaves_out_difficult_and_tiny_boxes(voc_root):
    pool = _pool(build(voc_root, **OURS))
    assert ('t3', (10., 10., 69., 99.)) not in pool  # difficult person
    assert ('t3', (100., 20., 109., 29.)) not in pool  # 9 x 9 car
    assert ('t1', (90., 10., 139., 99.)) in pool
    assert len(pool) == 11  # all 13 boxes but those two
    assert len(build(voc_root, query_exclude_difficult=True).pool_labels) \
        == 12
    assert len(build(voc_root, query_min_size=32).pool_labels) == 12


def test_training_never_queries_the_same_image(voc_root):
    dataset = build(voc_root)
    pairs = training_pairs(dataset, rounds=40)
    t0_dog = [p for p in pairs if p['img_id'] == 't0']
    assert len(t0_dog) == 40
    # t0's only other dog is in t1.
    assert {p['query_img_id'] for p in t0_dog} == {'t1'}
    for pair in pairs:
        assert pair['query_img_id'] != pair['img_id']
        name = CLASSES[pair['oneshot_class']]
        # The query box is a box of the query's class in the query image.
        assert [b - 1 for b in pair['query_bbox']
                ] in [[v - 1 for v in b]
                      for b in written_boxes(pair['query_img_id'], name)]
        # Ground truth: exactly that class's boxes in the image, with
        # their class (the detector trains them as matches).
        assert [i['bbox'] for i in pair['instances']
                ] == written_boxes(pair['img_id'], name)
        assert all(i['bbox_label'] == pair['oneshot_class']
                   for i in pair['instances'])


def test_unseen_classes_never_appear_in_training_pairs(voc_root):
    dataset = build(voc_root)
    ids = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))]
    assert ids == ['t0', 't1', 't3', 't4', 't5']  # t2 has cats only
    pairs = training_pairs(dataset, rounds=40)
    classes = Counter(CLASSES[p['oneshot_class']] for p in pairs)
    assert set(classes) == {'dog', 'person', 'car'}
    # t1 and t5 hold two seen classes: both get drawn.
    t5 = Counter(CLASSES[p['oneshot_class']] for p in pairs
                 if p['img_id'] == 't5')
    assert t5['car'] > 5 and t5['person'] > 5
    # Queries never come from an unseen class's box either.
    for pair in pairs:
        assert pair['query_bbox'] not in [[float(v) for v in b]
                                          for img in TRAINVAL for n in UNSEEN
                                          for b in written_boxes(img, n)]
    strict = build(voc_root, drop_images_with_unseen=True)
    assert [strict.get_data_info(i)['img_id']
            for i in range(len(strict))] == ['t1', 't3', 't5']


def _class_frequency(dataset, img_id, name, draws):
    """How often the training pairs of ``img_id`` query ``name``."""
    info = [
        dataset.get_data_info(i) for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] == img_id
    ][0]
    np.random.seed(0)
    labels = [
        dataset.draw_training_pair(info)['oneshot_class'] for _ in range(draws)
    ]
    return labels.count(CLASSES.index(name)) / draws


def test_training_classes_are_drawn_by_inverse_frequency(voc_root):
    """CoAE's draw: one over the class's number of training boxes
    (difficult ones counted). t1 holds a dog (4 dogs in all) and a person
    (3 persons, one difficult): dog 1/4 / (1/4 + 1/3) = 3/7."""
    dataset = build(voc_root)
    assert dataset.class_sampling == 'inverse_frequency'
    weights = dataset.class_weights
    assert weights[CLASSES.index('dog')] == pytest.approx(1 / 4)
    assert weights[CLASSES.index('person')] == pytest.approx(1 / 3)
    assert weights[CLASSES.index('car')] == pytest.approx(1 / 3)
    assert weights[CLASSES.index('bus')] == 0  # no box
    # 7000 draws: standard deviation 0.006; uniform would give 0.5.
    assert _class_frequency(dataset, 't1', 'dog', 7000) == pytest.approx(
        3 / 7, abs=0.02)
    uniform = build(voc_root, class_sampling='uniform')
    assert _class_frequency(uniform, 't1', 'dog', 7000) == pytest.approx(
        0.5, abs=0.02)


def test_protocol_is_in_the_metainfo(voc_root):
    loader = dict(type='LoadOneShotQuery', patch_size=16, augment=False)
    coae = build(voc_root, test_mode=True, pipeline=[loader])
    assert coae.metainfo['oneshot_protocol'] == dict(
        query_pool=('every box of the class', True),
        query_crop=('padded to a square', True))
    ours = build(
        voc_root,
        test_mode=True,
        pipeline=[dict(loader, pad_to_square=False)],
        **OURS)
    assert ours.metainfo['oneshot_protocol'] == dict(
        query_pool=('boxes of the class not difficult, sides >= 32 px', False),
        query_crop=('stretched', False))
    assert build(voc_root).metainfo['oneshot_protocol']['query_crop'] == (
        'unknown', False)


def test_training_draws_follow_numpy_seed(voc_root):
    dataset = build(voc_root)
    first = [(p['oneshot_class'], p['query_img_id'], p['query_bbox'])
             for p in training_pairs(dataset, rounds=5)]
    again = [(p['oneshot_class'], p['query_img_id'], p['query_bbox'])
             for p in training_pairs(dataset, rounds=5)]
    assert first == again


def test_test_episodes_cover_every_class_with_five_draws(voc_root):
    dataset = build(voc_root, test_mode=True)
    episodes = [dataset.get_data_info(i) for i in range(len(dataset))]
    keys = Counter(
        (e['img_id'], CLASSES[e['oneshot_class']]) for e in episodes)
    # e3's dog has queries in e0/e1; every class of every image is there.
    assert keys == {
        ('e0', 'dog'): 5,
        ('e0', 'cat'): 5,
        ('e0', 'aeroplane'): 5,
        ('e1', 'dog'): 5,
        ('e1', 'cat'): 5,
        ('e2', 'cat'): 5,
        ('e2', 'aeroplane'): 5,
        ('e3', 'dog'): 5
    }
    for e in episodes:
        name = CLASSES[e['oneshot_class']]
        assert e['query_img_id'] != e['img_id']
        assert [b - 1 for b in e['query_bbox']
                ] in [[v - 1 for v in b]
                      for b in written_boxes(e['query_img_id'], name)]
        assert [i['bbox']
                for i in e['instances']] == written_boxes(e['img_id'], name)
        # Difficult boxes stay, flagged to be ignored.
        assert [i['ignore_flag'] for i in e['instances']
                ] == [d for n, *_, d in TEST[e['img_id']] if n == name]
    assert sorted({e['oneshot_draw'] for e in episodes}) == [0, 1, 2, 3, 4]

    def cat_queries(dataset):
        return {
            dataset.get_data_info(i)['query_img_id']
            for i in range(len(dataset))
            if CLASSES[dataset.get_data_info(i)['oneshot_class']] == 'cat'
        }

    # e0's cat is difficult: a query all the same (CoAE), but not in ours.
    assert cat_queries(dataset) == {'e0', 'e1', 'e2'}
    assert cat_queries(build(voc_root, test_mode=True, **OURS)) == {'e1', 'e2'}


def test_test_queries_are_the_shuffled_pool_of_other_images(voc_root):
    dataset = build(voc_root, test_mode=True)
    e1_dog = [
        dataset.get_data_info(i) for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] == 'e1'
        and dataset.get_data_info(i)['oneshot_class'] == CLASSES.index('dog')
    ]
    # The dog pool without e1: e0's dog, e3's dog (test-set order).
    pool = [('e0', [10., 10., 59., 59.]), ('e3', [30., 30., 129., 99.])]
    order = np.random.RandomState(zlib.crc32(b'e1')).permutation(2)
    expected = [pool[order[d % 2]] for d in range(5)]
    assert [(e['query_img_id'], e['query_bbox']) for e in e1_dog] == expected
    assert episode_seed('e1') == zlib.crc32(b'e1')


def _episode_queries(root):
    dataset = build(root, test_mode=True, query_min_size=8)
    return [(dataset.get_data_info(i)['img_id'],
             dataset.get_data_info(i)['oneshot_class'],
             dataset.get_data_info(i)['oneshot_draw'],
             dataset.get_data_info(i)['query_img_id'],
             dataset.get_data_info(i)['query_bbox'])
            for i in range(len(dataset))]


SUBPROCESS = """
import sys, json
sys.path.insert(0, {repo!r})
from tests.test_datasets.test_oneshot_voc import _episode_queries
print(json.dumps(_episode_queries({root!r})))
"""


def test_same_image_id_gives_the_same_five_queries_every_run(tmp_path):
    root = tmp_path / 'voc'
    write_tiny_voc(
        str(root),
        num_trainval=2,
        num_test=24,
        classes=['dog', 'cat', 'car'],
        max_objects=3,
        seed=3)
    first = _episode_queries(root)
    np.random.seed(123)  # the global generator plays no part
    assert _episode_queries(root) == first
    # Shuffles differ between images: the seed is the image's id.
    by_img = {}
    for img_id, label, draw, query_id, _ in first:
        if label == CLASSES.index('dog'):
            by_img.setdefault(img_id, []).append(query_id)
    assert len(by_img) > 5 and len({tuple(q) for q in by_img.values()}) > 1
    # Another process with another hash salt: the same episodes.
    env = dict(os.environ, PYTHONHASHSEED='12345', OMP_NUM_THREADS='1')
    out = subprocess.run([
        sys.executable, '-c',
        SUBPROCESS.format(repo=str(REPO), root=str(root))
    ],
                         env=env,
                         capture_output=True,
                         text=True,
                         check=True).stdout
    import json
    assert [list(e) for e in first] == json.loads(out.strip().splitlines()[-1])


def test_pipeline_crops_the_query_and_packs_one_patch(voc_root):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(
            type='LoadOneShotQuery',
            patch_size=16,
            augment=False,
            pad_to_square=False),
        dict(
            type='PackUPDETRInputs',
            meta_keys=('img_id', 'oneshot_class', 'oneshot_draw',
                       'query_img_id'))
    ]
    dataset = build(voc_root, test_mode=True, pipeline=pipeline)
    packed = dataset[0]
    sample = packed['data_samples']
    assert sample.img_id == 'e0' and sample.query_img_id != 'e0'
    name = CLASSES[sample.oneshot_class]
    patch = sample.query_patches
    assert tuple(patch.shape) == (1, 3, 16, 16)
    # The crop is the query object: filled with its class colour.
    colour = np.array(class_colour(name), np.uint8)
    assert (patch[0].permute(1, 2, 0).numpy() == colour).all()
    assert sample.gt_instances.bboxes.tensor.tolist() == [
        [float(v) for v in b] for b in written_boxes('e0', name, 0)
    ]
    assert (sample.gt_instances.labels == sample.oneshot_class).all()


def test_bad_arguments_are_named(voc_root):
    with pytest.raises(ValueError, match='unseen_classes.*unicorn'):
        build(voc_root, unseen_classes=('cat', 'unicorn'))
    with pytest.raises(ValueError, match='num_draws'):
        build(voc_root, num_draws=0)
    with pytest.raises(ValueError, match="class_sampling.*'frequency'"):
        build(voc_root, class_sampling='frequency')
    # The wrapped dataset's classes hold no seen class.
    with pytest.raises(ValueError, match=r'every class.*no seen class'):
        OneShotVOCDataset(
            dataset=dict(
                voc_cfg(voc_root, 'trainval'),
                metainfo=dict(classes=('cat', 'aeroplane'))),
            unseen_classes=('cat', 'aeroplane'),
            pipeline=[])
    # (A test set of unseen classes only is fine.)
    unseen_only = OneShotVOCDataset(
        dataset=dict(
            voc_cfg(voc_root, 'test', test_mode=True),
            metainfo=dict(classes=('cat', 'aeroplane'))),
        unseen_classes=('cat', 'aeroplane'),
        test_mode=True,
        pipeline=[])
    assert {e['oneshot_class'] for e in unseen_only} == {0, 1}
    # A `metainfo` contradicting the labels or the split.
    with pytest.raises(ValueError, match='metainfo `classes`'):
        build(voc_root, metainfo=dict(classes=('dog', 'cat')))
    with pytest.raises(ValueError, match='metainfo `unseen_classes`'):
        build(voc_root, metainfo=dict(unseen_classes=('dog', )))
    # No box is large enough to be a query: no pair, no episode.
    with pytest.raises(ValueError, match=r'no training image.*ann_file'):
        build(voc_root, query_min_size=1000)
    with pytest.raises(ValueError, match=r'no test episode.*ann_file'):
        build(voc_root, test_mode=True, query_min_size=1000)
