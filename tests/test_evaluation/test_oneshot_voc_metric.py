import logging
import math

import numpy as np
import pytest
import torch
from mmdet.datasets import VOCDataset
from mmdet.structures import DetDataSample
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from mmdet_updetr.evaluation import (OneShotVOCMetric, episodes_ap,
                                     match_episode)

CLASSES = VOCDataset.METAINFO['classes']
UNSEEN = ('aeroplane', 'cat', 'cow', 'sheep')

# Half right: ranked TP, FP, TP, FP over 4 GT boxes in two episodes.
# Precision/recall points: (1, 1/4), (1/2, 1/4), (2/3, 2/4), (1/2, 2/4).
HALF_GTS = ([[0, 0, 9, 9], [20, 20, 29, 29]], [[0, 0, 19, 19],
                                               [40, 40, 59, 59]])
HALF_DETS = ([[0, 0, 9, 9, .9], [50, 50, 59, 59,
                                 .8]], [[0, 0, 19, 19, .7],
                                        [100, 100, 110, 110, .6]])
# Area under the interpolated curve: recall 0 -> 1/4 at precision 1, then
# 1/4 -> 2/4 at precision 2/3 (the best precision at recall >= 1/2).
HALF_AREA_AP = 0.25 * 1 + 0.25 * 2 / 3
# VOC2007's 11 points: recall 0, .1, .2 -> 1; .3, .4, .5 -> 2/3; the rest 0.
HALF_11PT_AP = (3 * 1 + 3 * 2 / 3) / 11


def arr(rows, width):
    return np.asarray(rows, np.float32).reshape(-1, width)


def half_episodes():
    return [(arr(d, 5), arr(g, 4), arr([], 4))
            for d, g in zip(HALF_DETS, HALF_GTS)]


def test_hand_made_aps():
    assert episodes_ap(
        half_episodes(), eval_mode='area') == pytest.approx(HALF_AREA_AP)
    assert episodes_ap(
        half_episodes(), eval_mode='11points') == pytest.approx(HALF_11PT_AP)
    # VOC2007's 11 points unless told otherwise (CoAE's protocol).
    assert episodes_ap(half_episodes()) == pytest.approx(HALF_11PT_AP)
    perfect = [(arr([g + [.9 - .1 * i]
                     for i, g in enumerate(gts)] + [[70, 70, 90, 90, .05]],
                    5), arr(gts, 4), arr([], 4)) for gts in HALF_GTS]
    assert episodes_ap(perfect) == pytest.approx(1.0)
    empty = [(arr([], 5), arr(g, 4), arr([], 4)) for g in HALF_GTS]
    assert episodes_ap(empty) == 0.0


def test_difficult_duplicates_and_episodes_are_kept_apart():
    # A top-scoring detection on a difficult box counts neither way.
    eps = half_episodes()
    dets, gts, _ = eps[0]
    eps[0] = (np.vstack([dets, [[60, 60, 79, 79,
                                 .95]]]), gts, arr([[60, 60, 79, 79]], 4))
    assert episodes_ap(eps, eval_mode='area') == pytest.approx(HALF_AREA_AP)
    # A second detection of a claimed box is a false positive: TP, FP.
    dup = [(arr([[0, 0, 9, 12, .9], [0, 0, 9, 9, .8]],
                5), arr([[0, 0, 9, 9]], 4), arr([], 4))]
    assert episodes_ap(dup) == pytest.approx(1.0)
    # FP (elsewhere), TP, FP (duplicate): precision 1/2 at recall 1.
    dup[0] = (np.vstack([dup[0][0], [[50, 50, 59, 59, .95]]]), *dup[0][1:])
    assert episodes_ap(dup) == pytest.approx(0.5)
    # A detection is matched within its own episode only.
    cross = [(arr([[0, 0, 9, 9, .9]], 5), arr([[50, 50, 59, 59]], 4), arr([],
                                                                          4)),
             (arr([], 5), arr([[0, 0, 9, 9]], 4), arr([], 4))]
    assert episodes_ap(cross) == 0.0
    # No non-difficult box at all: undefined.
    assert math.isnan(
        episodes_ap([(arr([[0, 0, 9, 9, .9]],
                          5), arr([], 4), arr([[0, 0, 9, 9]], 4))]))


def test_voc_pixel_convention():
    # Widths x2 - x1 + 1 (VOC): IoU = 100 / 200 = 0.5, a hit; with x2 - x1
    # it would be 81 / 171 < 0.5, a miss.
    eps = [(arr([[0, 0, 9, 9, .9]], 5), arr([[0, 0, 9, 19]], 4), arr([], 4))]
    assert episodes_ap(eps) == pytest.approx(1.0)
    assert episodes_ap(eps, use_legacy_coordinate=False) == 0.0


def sample(name, draw, dets, gts, ignored=()):
    data_sample = DetDataSample(
        metainfo=dict(oneshot_class=CLASSES.index(name), oneshot_draw=draw))
    data_sample.gt_instances = InstanceData(
        bboxes=torch.tensor(gts, dtype=torch.float32).reshape(-1, 4),
        labels=torch.zeros(len(gts), dtype=torch.long))
    data_sample.ignored_instances = InstanceData(
        bboxes=torch.tensor(ignored, dtype=torch.float32).reshape(-1, 4),
        labels=torch.zeros(len(ignored), dtype=torch.long))
    dets = torch.tensor(dets, dtype=torch.float32).reshape(-1, 5)
    data_sample.pred_instances = InstanceData(
        bboxes=dets[:, :4],
        scores=dets[:, 4],
        labels=torch.zeros(len(dets), dtype=torch.long))
    return data_sample.to_dict()


def hand_made_samples():
    """dog: draw 0 half right, draw 1 perfect; car: both draws empty;
    cat: perfect; aeroplane: difficult boxes only."""
    samples = []
    for dets, gts in zip(HALF_DETS, HALF_GTS):
        samples.append(sample('dog', 0, dets, gts))
        samples.append(sample('dog', 1, [g + [.9] for g in gts], gts))
    for draw in (0, 1):
        samples.append(sample('car', draw, [], [[5, 5, 30, 30]]))
        samples.append(
            sample('cat', draw, [[1, 1, 40, 40, .6]], [[1, 1, 40, 40]]))
        samples.append(
            sample('aeroplane', draw, [[1, 1, 40, 40, .6]], [],
                   [[1, 1, 40, 40]]))
    return samples


def make_metric(**kwargs):
    metric = OneShotVOCMetric(**kwargs)
    metric.dataset_meta = dict(classes=CLASSES, unseen_classes=UNSEEN)
    return metric


def test_metric_averages_draws_then_classes():
    metric = make_metric()
    assert metric.eval_mode == '11points'  # CoAE's, VOC2007's devkit
    samples = hand_made_samples()
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    dog = (HALF_11PT_AP + 1.0) / 2
    assert results == pytest.approx({
        'oneshot/dog_AP50': dog,
        'oneshot/car_AP50': 0.0,
        'oneshot/cat_AP50': 1.0,
        'oneshot/seen_AP50': (dog + 0.0) / 2,
        'oneshot/unseen_AP50': 1.0
    })


def test_unseen_classes_argument_overrides_the_dataset():
    metric = make_metric(unseen_classes=('cat', 'car'), eval_mode='area')
    samples = hand_made_samples()
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    assert results['oneshot/seen_AP50'] == pytest.approx(
        (HALF_AREA_AP + 1.0) / 2)
    assert results['oneshot/unseen_AP50'] == pytest.approx(0.5)


def test_table_is_shaped_like_table_3():
    metric = make_metric(eval_mode='area')
    metric.process({}, hand_made_samples())
    table = metric.table(metric.class_aps(metric.results), CLASSES,
                         UNSEEN).splitlines()
    header = [c.strip() for c in table[1].split('|')[1:-1]]
    # The paper's order: 16 seen classes, their mean, 4 unseen, their mean.
    assert header[1:5] == ['plant', 'sofa', 'tv', 'car']
    assert header[17:] == [
        'seen AP50', 'cow', 'sheep', 'cat', 'aero', 'unseen AP50'
    ]
    rows = {
        r.split('|')[1].strip(): [c.strip() for c in r.split('|')[1:-1]]
        for r in table[3:-1]
    }
    assert list(rows) == ['draw 0', 'draw 1', 'mean']
    col = header.index
    assert rows['draw 0'][col('dog')] == f'{100 * HALF_AREA_AP:.1f}'  # 41.7
    assert rows['draw 1'][col('dog')] == '100.0'
    assert rows['mean'][col('dog')] == '70.8'
    assert rows['mean'][col('car')] == '0.0'
    assert rows['mean'][col('seen AP50')] == '35.4'
    assert rows['mean'][col('aero')] == '-'
    assert rows['mean'][col('plant')] == '-'
    assert rows['mean'][col('unseen AP50')] == '100.0'


@pytest.fixture
def caplog_mm(caplog):
    """``caplog`` that also sees mmengine's current logger (which does not
    propagate to the root logger)."""
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


COAE_META = dict(
    query_pool=('every box of the class', True),
    query_crop=('padded to a square', True))


def test_log_says_which_protocol_was_used(caplog_mm):
    metric = make_metric()
    metric.dataset_meta = dict(metric.dataset_meta, oneshot_protocol=COAE_META)
    assert metric.protocol() == (
        "Protocol: CoAE's (VOC2007 11-point AP50; query pool: every box of "
        'the class; query crop: padded to a square)')
    samples = hand_made_samples()
    metric.process({}, samples)
    metric.evaluate(len(samples))
    log = caplog_mm.text
    assert '| seen AP50 |' in log
    assert log.index('| seen AP50 |') < log.index("Protocol: CoAE's (")
    # Ours: area AP, the filtered pool, the stretched crop.
    ours = make_metric(eval_mode='area')
    ours.dataset_meta = dict(
        ours.dataset_meta,
        oneshot_protocol=dict(
            query_pool=('boxes of the class not difficult, sides >= 32 px',
                        False),
            query_crop=('stretched', False)))
    assert ours.protocol() == (
        "Protocol: not CoAE's (AP, query pool, query crop differ) (area "
        'AP50; query pool: boxes of the class not difficult, sides >= 32 '
        'px; query crop: stretched)')
    # A dataset that does not say.
    assert make_metric().protocol() == (
        "Protocol: not CoAE's (query pool, query crop differ) (VOC2007 "
        '11-point AP50; query pool: unknown; query crop: unknown)')


def test_missing_episode_keys_are_named():
    metric = make_metric()
    bad = hand_made_samples()[0]
    del bad['oneshot_draw']
    with pytest.raises(KeyError, match="oneshot_draw.*meta_keys"):
        metric.process({}, [bad])
    with pytest.raises(ValueError, match='eval_mode'):
        OneShotVOCMetric(eval_mode='coco')


# --------------------------------------------------------------------------
# Ties: matching and ranking in one stable order.
# --------------------------------------------------------------------------
_numpy_argsort = np.argsort


def _reversed_ties_argsort(a, axis=-1, kind=None, order=None):
    """``np.argsort`` as an unstable sort may do it (numpy's AVX-512 sort
    does, on some inputs): equal keys come out in reverse order. Stable
    sorts are left alone."""
    if kind in ('stable', 'mergesort'):
        return _numpy_argsort(a, axis=axis, kind=kind, order=order)
    a = np.asarray(a)
    assert a.ndim == 1
    return len(a) - 1 - _numpy_argsort(a[::-1], kind='stable')


@pytest.fixture(params=['numpy', 'reversed_ties'])
def any_unstable_sort(request, monkeypatch):
    """Runs a test with this machine's numpy sort, then with an unstable
    sort that reverses ties, as another CPU's may."""
    if request.param == 'reversed_ties':
        monkeypatch.setattr(np, 'argsort', _reversed_ties_argsort)
        assert np.argsort(np.zeros(3, np.float32)).tolist() == [2, 1, 0]
    return request.param


def _explicit_ties(episodes):
    """The episodes with every tie broken by hand: scores made distinct and
    decreasing in (score, episode, index) order, the stable order."""
    keys = [(-float(s), e, i) for e, (dets, _, _) in enumerate(episodes)
            for i, s in enumerate(dets[:, 4])]
    rank = {k[1:]: r for r, k in enumerate(sorted(keys))}
    out = []
    for e, (dets, gts, ignored) in enumerate(episodes):
        dets = dets.copy()
        dets[:, 4] = [1. - rank[(e, i)] / len(keys) for i in range(len(dets))]
        out.append((dets, gts, ignored))
    return out


def test_tied_copies_of_a_box_rank_the_true_positive_first(any_unstable_sort):
    # Two misses at 0.5 and two copies of the box at 0.9: the first copy
    # (in the stable order) is the true positive and is ranked first.
    box = [0, 0, 9, 9]
    eps = [(arr(
        [[50, 50, 59, 59, .5], [70, 70, 79, 79, .5], box + [.9], box + [.9]],
        5), arr([box], 4), arr([], 4))]
    for mode in ('area', '11points'):
        assert episodes_ap(eps, eval_mode=mode) == pytest.approx(1.0)
    tp, fp = match_episode(eps[0][0], eps[0][1], eps[0][2])
    assert tp.tolist() == [0, 0, 1, 0] and fp.tolist() == [1, 1, 0, 1]


def _misses(num, score):
    """``num`` 10 x 10 detections on a grid far from the GT boxes."""
    dets = np.array([[100 + 20 * (i % 10), 100 + 20 * (i // 10)] * 2 + [score]
                     for i in range(num)], np.float32)
    dets[:, 2:4] += 9
    return dets


def test_hundred_tied_detections(any_unstable_sort):
    # DETR's 100 queries, all at one score; copies of the box at 3 and 50,
    # misses elsewhere. Stable: 3 is the true positive, ranked 4th.
    dets = _misses(100, .5)
    dets[[3, 50], :4] = [0, 0, 9, 9]
    eps = [(dets, arr([[0, 0, 9, 9]], 4), arr([], 4))]
    for mode in ('area', '11points'):
        assert episodes_ap(eps, eval_mode=mode) == pytest.approx(0.25)
        assert episodes_ap(
            _explicit_ties(eps), eval_mode=mode) == pytest.approx(0.25)


#: Per episode: the GT box, the detections at exactly 1.0 and which of
#: them are copies of the box (the others are misses).
SATURATED = (([0, 0, 19, 19], [0, 5, 11, 17, 40, 63, 77, 98], [5, 17, 77, 98]),
             ([30, 30, 59, 59], [1, 2, 4, 30, 31, 70], [2, 31, 70]))


def _saturated_episodes():
    """Two episodes of 100 detections, scores as a model's float32
    sigmoids: the listed ones saturated at exactly 1.0, the others below
    and all misses."""
    episodes = []
    for gt, saturated, copies in SATURATED:
        logits = torch.linspace(3, -6, 100)
        logits[saturated] = 30.
        dets = _misses(100, 0.)
        dets[:, 4] = logits.sigmoid().numpy()
        dets[copies, :4] = gt
        episodes.append((dets, arr([gt], 4), arr([], 4)))
    return episodes


def test_saturated_scores(any_unstable_sort):
    eps = _saturated_episodes()
    assert [np.flatnonzero(d[:, 4] == 1.).tolist()
            for d, _, _ in eps] == [s for _, s, _ in SATURATED]
    # Ranked: the 8 of the first episode (miss, its first copy: TP, 6
    # FPs), then the 6 of the second (miss, first copy: TP, 4 FPs), then
    # the misses below 1. Precision 1/2 at recall 1/2, 2/10 at recall 1.
    area = 0.5 * 1 / 2 + 0.5 * 2 / 10
    eleven = (6 * 1 / 2 + 5 * 2 / 10) / 11
    assert episodes_ap(eps, eval_mode='area') == pytest.approx(area)
    assert episodes_ap(eps) == pytest.approx(eleven)
    assert episodes_ap(_explicit_ties(eps)) == pytest.approx(eleven)
