"""End to end: one-shot training from a tiny pre-training checkpoint on a
tiny VOC set, then the paper's evaluation."""
import glob
import os.path as osp
import pickle

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet_updetr.testing import tiny_oneshot_cfg


class _StartWeights(Hook):
    """Records the weights training starts from."""

    def before_train(self, runner) -> None:
        self.weights = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }


def test_tiny_oneshot_run_from_pretraining(tmp_path, tiny_pretrain_checkpoint):
    cfg = tiny_oneshot_cfg(tmp_path, tiny_pretrain_checkpoint)
    dump = osp.join(tmp_path, 'episodes.pkl')
    cfg.test_evaluator = [
        cfg.test_evaluator,
        dict(type='DumpDetResults', out_file_path=dump)
    ]
    runner = Runner.from_cfg(cfg)
    start = _StartWeights()
    runner.register_hook(start)
    runner.train()

    # Started from the pre-training run: patch2query and the 2-way
    # classifier included; the pretext's feature_align was dropped.
    pretrained = torch.load(
        tiny_pretrain_checkpoint, weights_only=True)['state_dict']
    for key in ('patch2query.weight', 'bbox_head.fc_cls.weight',
                'query_embedding.weight', 'backbone.layer4.0.conv1.weight',
                'decoder.layers.0.cross_attn.attn.in_proj_weight'):
        torch.testing.assert_close(start.weights[key], pretrained[key])
    assert not any('feature_align' in k for k in start.weights)
    # Training pairs were only of seen classes (dog, car, person).
    train_set = runner.train_dataloader.dataset
    classes = train_set.metainfo['classes']
    assert {
        classes[c]
        for i in range(len(train_set))
        for c in train_set.get_data_info(i)['oneshot_candidates']
    } <= {'dog', 'car', 'person'}
    assert runner.iter > 0

    metrics = runner.test()
    per_class = {k.split('/')[1][:-5] for k in metrics} - {'seen', 'unseen'}
    assert per_class & {'dog', 'car', 'person'}
    assert per_class & {'aeroplane', 'cat'}
    assert all(0 <= v <= 1 for v in metrics.values())
    # The group means are the means of their classes' APs.
    for group, names in (('seen', {'dog', 'car',
                                   'person'}), ('unseen', {'aeroplane',
                                                           'cat'})):
        values = [metrics[f'oneshot/{c}_AP50'] for c in per_class & names]
        assert metrics[f'oneshot/{group}_AP50'] == pytest.approx(
            sum(values) / len(values)), group

    log = open(glob.glob(osp.join(cfg.work_dir, '*', '*.log'))[-1]).read()
    assert 'dropped | bbox_head.feature_align' in log
    assert 'One-shot AP50' in log
    assert '| seen AP50 |' in log and '| unseen AP50 |' in log
    # The config's protocol is CoAE's, and the log says so.
    assert ("Protocol: CoAE's (VOC2007 11-point AP50; query pool: every box "
            'of the class; query crop: padded to a square)') in log
    assert 'query classes drawn by inverse box frequency (CoAE)' in log

    # `--out`-style dumps carry predictions, not the query crops.
    episodes = pickle.load(open(dump, 'rb'))
    assert len(episodes) == len(runner.test_dataloader.dataset)
    assert all('query_patches' not in e and 'query_patch_aug' not in e
               for e in episodes)
    assert episodes[0]['pred_instances']['bboxes'].shape == (10, 4)
