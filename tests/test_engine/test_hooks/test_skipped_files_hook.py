"""``SkippedFilesHook``: skipped images counted in every loading process
and reported per epoch, each file named once."""
import logging
import re

from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmdet_updetr.testing import tiny_pretrain_cfg, write_good_and_bad


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_skips_counted_in_workers_and_named_once(tmp_path):
    """2 data-loader workers (processes of their own) load 13 files, 5 of
    them bad, for 2 epochs: each epoch's report counts every skip, the
    first names the 5 bad files, the second names none again."""
    files = write_good_and_bad(tmp_path / 'images')
    cfg = tiny_pretrain_cfg(tmp_path, max_epochs=2)
    cfg.train_dataloader.dataset = dict(
        type='UnlabeledImageDataset',
        data_root=str(tmp_path / 'images'),
        pipeline=cfg.train_dataloader.dataset.pipeline)
    cfg.train_dataloader.update(num_workers=2, persistent_workers=True)
    cfg.log_level = 'INFO'
    runner = Runner.from_cfg(cfg)
    records = _Records()
    MMLogger.get_current_instance().addHandler(records)
    try:
        runner.train()
    finally:
        MMLogger.get_current_instance().removeHandler(records)
    reports = [m for m in records.messages if 'images skipped on all' in m]
    assert len(reports) == 2, records.messages[-20:]
    named = [re.findall(r'bad_\w+\.(?:jpg|png)', r) for r in reports]
    assert sorted(named[0]) == files['bad'] and named[1] == []
    for report in reports:
        skipped, distinct = map(
            int,
            re.search(r'(\d+) images skipped on all ranks \((\d+) files',
                      report).groups())
        assert skipped >= distinct >= 1
    assert 'not reported before' in reports[1]
