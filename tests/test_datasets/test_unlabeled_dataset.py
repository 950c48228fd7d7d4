import os
import os.path as osp
import threading

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

import mmdet_updetr.datasets  # noqa: F401  (registers the modules)
from mmdet_updetr.datasets import DemoPhotoDataset, UnlabeledImageDataset
from mmdet_updetr.datasets.demo_photos import DEMO_PHOTOS, write_demo_photos
from mmdet_updetr.datasets.unlabeled_dataset import (parse_list_line,
                                                     scan_images)

SCALES = (320, 336, 352, 368, 400, 416, 432, 448, 464, 480)


def train_pipeline(num_patches=3):
    return [
        dict(type='SafeLoadImageFromFile'),
        dict(type='QueryPatchTransform', num_patches=num_patches),
        dict(
            type='RandomChoiceResize',
            scales=[(s, 600) for s in SCALES],
            keep_ratio=True),
        dict(type='PackUPDETRInputs'),
    ]


def touch(path, data=b'x'):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def tree(tmp_path):
    """Nested folders, odd extensions, hidden files and links (one cycle,
    one duplicate, one outside the root, one broken)."""
    root = tmp_path / 'root'
    for rel in ('b/two.JPG', 'a/one.jpg', 'a/deep/three.Png',
                'a/deep/four.jpeg', 'c/five.WEBP', 'c/notes.txt',
                'c/six.jpg.txt', '.hidden/seven.jpg', 'a/.eight.jpg'):
        touch(root / rel)
    (root / 'dir.jpg').mkdir()  # a folder with an image extension
    outside = tmp_path / 'outside'
    touch(outside / 'nine.bmp')
    os.symlink(outside, root / 'linked_outside')
    os.symlink(root, root / 'a' / 'deep' / 'cycle')  # link cycle
    os.symlink(root / 'a', root / 'z_duplicate_of_a')
    os.symlink(root / 'missing.jpg', root / 'broken.jpg')
    os.symlink(root / 'b' / 'two.JPG', root / 'file_link.jpg')
    return root


EXPECTED = sorted([
    'a/deep/four.jpeg', 'a/deep/three.Png', 'a/one.jpg', 'b/two.JPG',
    'c/five.WEBP', 'file_link.jpg', 'linked_outside/nine.bmp'
])


def test_scan_images_recursive_links_case(tree):
    assert scan_images(str(tree)) == EXPECTED
    # The same list, whatever the order of the calls.
    assert scan_images(str(tree)) == EXPECTED
    assert '.hidden/seven.jpg' in scan_images(str(tree), include_hidden=True)
    upper = scan_images(str(tree), extensions=('.JPG', ))
    assert upper == ['a/one.jpg', 'b/two.JPG', 'file_link.jpg']


def test_dataset_folder_mode(tree):
    dataset = UnlabeledImageDataset(
        data_root=str(tree.parent), data_prefix=dict(img_path='root'))
    assert len(dataset) == len(EXPECTED)
    for idx, rel in enumerate(EXPECTED):
        info = dataset.get_data_info(idx)
        assert info['img_id'] == idx
        assert info['img_path'] == osp.join(str(tree), rel)
    assert dataset.metainfo['classes'] == ('patch', )


@pytest.mark.parametrize('make', ['missing', 'empty', 'no_images'])
def test_dataset_folder_errors_name_the_folder(tmp_path, make):
    folder = tmp_path / 'imgs'
    if make != 'missing':
        folder.mkdir()
    if make == 'no_images':
        touch(folder / 'sub' / 'readme.txt')
    with pytest.raises(FileNotFoundError) as err:
        UnlabeledImageDataset(data_root=str(folder))
    assert str(folder) in str(err.value)
    assert 'data_root' in str(err.value)  # says what to do


def test_dataset_no_folder_configured():
    with pytest.raises(FileNotFoundError, match='No image folder'):
        UnlabeledImageDataset()


def test_parse_list_line():
    assert parse_list_line('n01/n01_1.JPEG 0\n') == 'n01/n01_1.JPEG'
    assert parse_list_line('  a/b c.jpg  ') == 'a/b c.jpg'
    assert parse_list_line('a/b c.jpg 12') == 'a/b c.jpg'
    assert parse_list_line('plain.png') == 'plain.png'
    assert parse_list_line('   ') is None
    assert parse_list_line('# comment') is None


def test_dataset_list_file_mode(tmp_path):
    lines = 'n1/a.JPEG 0\n\n# a comment\nn2/b.JPEG 1\n/abs/c.jpg\n'
    (tmp_path / 'train.txt').write_text(lines)
    dataset = UnlabeledImageDataset(
        data_root=str(tmp_path),
        ann_file='train.txt',
        data_prefix=dict(img_path='train'))
    paths = [dataset.get_data_info(i)['img_path'] for i in range(3)]
    assert paths == [
        osp.join(str(tmp_path), 'train', 'n1/a.JPEG'),
        osp.join(str(tmp_path), 'train', 'n2/b.JPEG'), '/abs/c.jpg'
    ]
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        UnlabeledImageDataset(data_root=str(tmp_path), ann_file='nope.txt')
    (tmp_path / 'empty.txt').write_text('\n# nothing\n')
    with pytest.raises(ValueError, match='empty.txt'):
        UnlabeledImageDataset(data_root=str(tmp_path), ann_file='empty.txt')


def test_dataloader_skips_bad_files_and_warns_once(mixed_folder, mm_caplog):
    init_default_scope('mmdet')
    folder, names = mixed_folder
    dataset = UnlabeledImageDataset(
        data_root=str(folder), pipeline=train_pipeline())
    assert len(dataset) == len(names['bad']) + len(names['good'])
    np.random.seed(0)
    loader = DataLoader(
        dataset, batch_size=4, num_workers=0, collate_fn=pseudo_collate)
    samples = 0
    for _ in range(3):  # three epochs: every bad file is met again
        for batch in loader:
            for img, sample in zip(batch['inputs'], batch['data_samples']):
                samples += 1
                assert img.dtype == torch.uint8 and img.shape[0] == 3
                assert min(img.shape[1:]) >= 320
                assert osp.basename(sample.img_path) in names['good']
                assert sample.query_patches.shape == (3, 3, 128, 128)
                assert len(sample.gt_instances) == 3
    assert samples == 3 * len(dataset)
    messages = [r.getMessage() for r in mm_caplog.records]
    for name in names['bad']:
        hits = [m for m in messages if osp.join(str(folder), name) in m]
        assert len(hits) == 1, (name, hits)
    assert not any(name in m for m in messages for name in names['good'])


def test_test_mode_takes_next_valid_image(mixed_folder):
    init_default_scope('mmdet')
    folder, names = mixed_folder
    dataset = UnlabeledImageDataset(
        data_root=str(folder),
        pipeline=[dict(type='SafeLoadImageFromFile')],
        test_mode=True)
    paths = [dataset.get_data_info(i)['img_path'] for i in range(5)]
    assert [osp.basename(p) for p in paths] == names['bad']
    # All bad files sort first: each index falls through to the first good.
    for idx in range(len(names['bad'])):
        assert osp.basename(dataset[idx]['img_path']) == names['good'][0]
    assert dataset[len(dataset) - 1]['img_path'].endswith(names['good'][-1])


def test_demo_photo_dataset(tmp_path):
    folder = tmp_path / 'demo'
    dataset = DemoPhotoDataset(data_root=str(folder))
    names = sorted(p.name for p in folder.iterdir())
    assert len(dataset) == len(names) >= 8
    assert set(names) <= {f'{n}.jpg' for n in DEMO_PHOTOS}
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # Idempotent: the second use writes nothing.
    assert len(DemoPhotoDataset(data_root=str(folder))) == len(dataset)
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_write_demo_photos_concurrently(tmp_path):
    folder = str(tmp_path / 'demo')
    errors = []

    def write():
        try:
            write_demo_photos(folder, names=('chelsea', 'coffee', 'rocket'))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    written = sorted(os.listdir(folder))
    assert written == ['chelsea.jpg', 'coffee.jpg', 'rocket.jpg']
