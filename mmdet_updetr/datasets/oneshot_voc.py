# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""One-shot detection pairs and test episodes over PASCAL VOC (SPEC §3)."""
import copy
import zlib
from collections import Counter
from typing import List, Optional, Sequence, Union

import numpy as np
from mmdet.datasets import VOCDataset
from mmdet.registry import DATASETS
from mmdet.utils import ConfigType
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .transforms import LoadOneShotQuery

#: CoAE's VOC split (Hsieh et al., NeurIPS 2019), the paper's Table 3.
COAE_UNSEEN_CLASSES = ('aeroplane', 'cat', 'cow', 'sheep')
#: How training draws the query class of an image: CoAE's and ours.
CLASS_SAMPLINGS = ('inverse_frequency', 'uniform')


def episode_seed(img_id: Union[str, int]) -> int:
    """The shuffle seed of an image's query pools.

    ``zlib.crc32`` of the id string: the same in every run and process
    (Python's ``hash`` of a string is salted per process).
    """
    return zlib.crc32(str(img_id).encode('utf-8'))


@DATASETS.register_module()
class OneShotVOCDataset(BaseDataset):
    """One-shot detection over a VOC-style detection dataset.

    Wraps a dataset whose items carry ``instances`` (mmdet's
    :class:`VOCDataset`, or a ``ConcatDataset`` of them for VOC07+12) and
    turns it into one-shot samples. Each sample names a *query object*
    (``query_img_path``, ``query_bbox``, cropped by
    :class:`LoadOneShotQuery`) and keeps as ground truth only the boxes of
    the query's class, with their class label (so that mmdet's visualisers
    name them; :class:`OneShotUPDETR` trains them as "matches the query").

    **Query pool.** Per class, every ground-truth box of this split's
    images, difficult and small ones included, as CoAE (a training set draws
    queries from its training images, a test set from its test images, as
    CoAE does). ``query_exclude_difficult`` leaves out boxes flagged
    ``ignore_flag`` (VOC's *difficult*) and ``query_min_size`` boxes with a
    side below that many pixels (a crop of a few pixels, resized to
    128 x 128, shows little): easier queries, not CoAE's protocol.
    Truncated objects stay in (mmdet does not read VOC's ``truncated``).
    Left-out boxes are still ground truth of their image: in evaluation
    difficult ones are ignored (neither hit nor miss), as VOC.

    **Training** (``test_mode=False``), one sample per image and epoch: a
    seen class with a non-difficult box in the image and a query box of that
    class from *another* image, drawn uniformly from the pool. The class is
    drawn with probability proportional to the inverse of its number of
    boxes in the training images (``class_sampling='inverse_frequency'``,
    CoAE's, so that rare classes are queried as often as common ones), or
    uniformly (``'uniform'``). Both draws use numpy's global generator
    (seeded per worker by MMEngine's ``randomness`` setting, like mmdet's
    random transforms).
    Images without such a class (e.g. with unseen classes only) are dropped.
    Unseen objects in the kept images are never targets nor queries, only
    background, like every other object not of the query's class (CoAE
    keeps such images too; ``drop_images_with_unseen=True`` removes them,
    the stricter protocol).

    **Testing** (``test_mode=True``): for every class present in a test
    image (seen and unseen, difficult boxes included, as CoAE), that
    class's pool without the image's own boxes is shuffled with
    ``np.random.RandomState(episode_seed(img_id))`` and its first
    ``num_draws`` queries (cycled if the pool is smaller) make
    ``num_draws`` episodes, one data sample each, in the order image,
    class, draw. A class with an empty pool is skipped (and logged).

    Added keys of each sample: ``query_img_path``, ``query_bbox`` (xyxy),
    ``query_img_id``, ``oneshot_class`` (the class index), ``oneshot_draw``
    (the draw index, -1 in training); ``instances`` keep only that class.
    The metainfo gets ``oneshot_protocol``: the query pool and the query
    crop (of the pipeline's :class:`LoadOneShotQuery`), each as
    ``(description, is CoAE's)``, which :class:`OneShotVOCMetric` prints.

    Args:
        dataset (:obj:`ConfigDict` | dict | BaseDataset): The wrapped
            dataset, without a pipeline (only its annotations are read).
        unseen_classes (Sequence[str]): Classes never trained on. Defaults to
            CoAE's ``('aeroplane', 'cat', 'cow', 'sheep')``.
        num_draws (int): Query draws per class and test image. Defaults to 5.
        query_min_size (float): Smallest side (pixels) of a query box.
            Defaults to 0 (CoAE's: every box).
        query_exclude_difficult (bool): Leave boxes flagged
            ``ignore_flag`` (difficult) out of the query pool. Defaults to
            False (CoAE's: every box).
        class_sampling (str): How training draws an image's query class:
            'inverse_frequency' (CoAE's) or 'uniform'. Defaults to
            'inverse_frequency'.
        drop_images_with_unseen (bool): In training, drop every image that
            holds an unseen object. Defaults to False.
        **kwargs: Arguments of :class:`BaseDataset` (``pipeline``,
            ``test_mode``, ``metainfo``, ``indices``, ...).
    """

    METAINFO = dict(VOCDataset.METAINFO, unseen_classes=COAE_UNSEEN_CLASSES)

    def __init__(self,
                 dataset: Union[ConfigType, BaseDataset],
                 unseen_classes: Sequence[str] = COAE_UNSEEN_CLASSES,
                 num_draws: int = 5,
                 query_min_size: float = 0,
                 query_exclude_difficult: bool = False,
                 class_sampling: str = 'inverse_frequency',
                 drop_images_with_unseen: bool = False,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if num_draws < 1:
            raise ValueError(f'num_draws must be >= 1, got {num_draws}')
        if class_sampling not in CLASS_SAMPLINGS:
            raise ValueError(f'OneShotVOCDataset: class_sampling must be one'
                             f' of {CLASS_SAMPLINGS}, got {class_sampling!r}')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset,
                                                             dict) else dataset
        self.num_draws = num_draws
        self.query_min_size = query_min_size
        self.query_exclude_difficult = query_exclude_difficult
        self.class_sampling = class_sampling
        self.drop_images_with_unseen = drop_images_with_unseen
        classes = tuple(self.dataset.metainfo['classes'])
        self._check_classes(classes, tuple(unseen_classes), metainfo or {},
                            kwargs.get('test_mode', False))
        self.unseen_labels = {classes.index(c) for c in unseen_classes}
        metainfo = {
            **self.dataset.metainfo, 'unseen_classes': tuple(unseen_classes),
            **(metainfo or {})
        }
        super().__init__(metainfo=metainfo, **kwargs)
        self._metainfo['oneshot_protocol'] = self.protocol()

    def protocol(self) -> dict:
        """The query pool and query crop, compared with CoAE's.

        Returns:
            dict: ``query_pool`` and ``query_crop``, each ``(description,
            is CoAE's)``; the crop is that of the pipeline's
            :class:`LoadOneShotQuery` ('unknown' without one).
        """
        rules = (['not difficult'] if self.query_exclude_difficult else
                 []) + ([f'sides >= {self.query_min_size} px']
                        if self.query_min_size > 0 else [])
        pool = ('every box of the class',
                True) if not rules else ('boxes of the class ' +
                                         ', '.join(rules), False)
        loaders = [
            t for t in self.pipeline.transforms
            if isinstance(t, LoadOneShotQuery)
        ]
        crop = ('unknown', False) if not loaders else ((
            'padded to a square', True) if loaders[0].pad_to_square else
                                                       ('stretched', False))
        return dict(query_pool=pool, query_crop=crop)

    @staticmethod
    def _check_classes(classes: tuple, unseen: tuple, metainfo: dict,
                       test_mode: bool) -> None:
        """Refuse a split that cannot work, naming the offending key.

        Args:
            classes (tuple[str]): The wrapped dataset's class names.
            unseen (tuple[str]): The ``unseen_classes`` argument.
            metainfo (dict): The ``metainfo`` argument.
            test_mode (bool): A test set may hold unseen classes only.
        """
        unknown = [c for c in unseen if c not in classes]
        if unknown:
            raise ValueError(f'OneShotVOCDataset: unseen_classes {unknown} '
                             f'are not classes of the dataset ({classes})')
        if not test_mode and not set(classes) - set(unseen):
            raise ValueError(
                f'OneShotVOCDataset: every class of the dataset ({classes}) '
                f'is in unseen_classes ({unseen}): no seen class is left to '
                'train on. Check the wrapped dataset\'s metainfo `classes`.')
        # Labels and the metric's seen / unseen groups come from the
        # arguments: a `metainfo` saying otherwise would be silently wrong.
        for key, value in (('classes', classes), ('unseen_classes', unseen)):
            if key in metainfo and tuple(metainfo[key]) != value:
                raise ValueError(
                    f'OneShotVOCDataset: metainfo `{key}` '
                    f'{tuple(metainfo[key])} differs from {value}: set the '
                    'classes in the wrapped dataset (`dataset.metainfo`) and '
                    'the unseen ones by `unseen_classes`.')

    def load_data_list(self) -> List[dict]:
        """Build the query pool, then the training images or test episodes.

        Returns:
            list[dict]: Training: one item per kept image, with its candidate
            query classes ``oneshot_candidates``. Testing: one item per
            episode, with its query.
        """
        self.dataset.full_init()
        self.img_infos = [
            self.dataset.get_data_info(i) for i in range(len(self.dataset))
        ]
        self._build_pool()
        if self.test_mode:
            return self._load_episodes()
        return self._load_training_images()

    def _build_pool(self) -> None:
        """Collect the query boxes: per class, (image index, box)."""
        labels, imgs, bboxes = [], [], []
        for i, info in enumerate(self.img_infos):
            for inst in info['instances']:
                x1, y1, x2, y2 = inst['bbox']
                if self.query_exclude_difficult and inst.get('ignore_flag'):
                    continue
                if min(x2 - x1, y2 - y1) < self.query_min_size:
                    continue
                labels.append(inst['bbox_label'])
                imgs.append(i)
                bboxes.append(inst['bbox'])
        self.pool_labels = np.asarray(labels, dtype=np.int64)
        self.pool_imgs = np.asarray(imgs, dtype=np.int64)
        self.pool_bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
        self.class_pools = {
            c: np.flatnonzero(self.pool_labels == c)
            for c in range(len(self.metainfo['classes']))
        }

    def pool_without(self, label: int, img_index: int) -> np.ndarray:
        """Pool entries of class ``label`` that are not in image
        ``img_index``, in pool order."""
        pool = self.class_pools[label]
        return pool[self.pool_imgs[pool] != img_index]

    def _load_training_images(self) -> List[dict]:
        """One item per image with a seen class to query for."""
        data_list = []
        for i, info in enumerate(self.img_infos):
            labels = {inst['bbox_label'] for inst in info['instances']}
            if self.drop_images_with_unseen and labels & self.unseen_labels:
                continue
            candidates = sorted({
                inst['bbox_label']
                for inst in info['instances'] if not inst.get('ignore_flag')
                and inst['bbox_label'] not in self.unseen_labels
                and len(self.pool_without(inst['bbox_label'], i))
            })
            if candidates:
                data_list.append(
                    dict(info, img_index=i, oneshot_candidates=candidates))
        if not data_list:
            raise ValueError(
                'OneShotVOCDataset: no training image has a box of a seen '
                'class with a query in another image (of '
                f'{len(self.img_infos)} images; unseen_classes '
                f'{self.metainfo["unseen_classes"]}, query_min_size '
                f'{self.query_min_size}). Check the wrapped dataset\'s '
                '`ann_file` and `classes`.')
        self._count_classes(data_list)
        print_log(
            f'OneShotVOCDataset: {len(data_list)} of {len(self.img_infos)} '
            'training images have a seen class to query for; query classes '
            'drawn ' +
            ('by inverse box frequency (CoAE)' if self.class_sampling
             == 'inverse_frequency' else 'uniformly') + '.',
            logger='current')
        return data_list

    def _count_classes(self, data_list: List[dict]) -> None:
        """The inverse-frequency weights of the classes: one over the number
        of boxes of each class in the training images (difficult ones
        included, as CoAE counts them), 0 for a class without boxes."""
        labels = [
            inst['bbox_label'] for info in data_list
            for inst in info['instances']
        ]
        counts = np.bincount(labels, minlength=len(self.metainfo['classes']))
        self.class_weights = np.divide(
            1., counts, out=np.zeros(len(counts)), where=counts > 0)

    def _load_episodes(self) -> List[dict]:
        """``num_draws`` episodes per class present in each test image."""
        data_list, skipped = [], Counter()
        for i, info in enumerate(self.img_infos):
            for label in sorted({x['bbox_label'] for x in info['instances']}):
                pool = self.pool_without(label, i)
                if not len(pool):
                    skipped[self.metainfo['classes'][label]] += 1
                    continue
                order = np.random.RandomState(episode_seed(
                    info['img_id'])).permutation(len(pool))
                for draw in range(self.num_draws):
                    query = pool[order[draw % len(pool)]]
                    data_list.append(
                        self.make_episode(info, i, label, query, draw))
        if not data_list:
            raise ValueError(
                'OneShotVOCDataset: no test episode: no class of the '
                f'{len(self.img_infos)} images has a query box in another '
                f'image (query_min_size {self.query_min_size}). Check the '
                'wrapped dataset\'s `ann_file` and `classes`.')
        print_log(
            f'OneShotVOCDataset: {len(data_list)} test episodes '
            f'({self.num_draws} draws per class and image) from '
            f'{len(self.img_infos)} images' +
            (f'; skipped (no query in other images): {dict(skipped)}'
             if skipped else ''),
            logger='current')
        return data_list

    def make_episode(self, info: dict, img_index: int, label: int, query: int,
                     draw: int) -> dict:
        """A one-shot sample: the image, its boxes of class ``label``, and
        query ``query`` (an index into the pool).

        Args:
            info (dict): The image's data info, with ``instances``.
            img_index (int): Index of the image in the wrapped dataset.
            label (int): The query's class.
            query (int): Index of the query in the pool.
            draw (int): Draw index (-1 in training).

        Returns:
            dict: A new data info.
        """
        query_img = self.img_infos[self.pool_imgs[query]]
        instances = [
            inst for inst in info['instances'] if inst['bbox_label'] == label
        ]
        episode = {k: v for k, v in info.items() if k != 'oneshot_candidates'}
        episode.update(
            instances=copy.deepcopy(instances),
            img_index=img_index,
            oneshot_class=int(label),
            oneshot_draw=int(draw),
            query_img_path=query_img['img_path'],
            query_img_id=query_img['img_id'],
            query_bbox=self.pool_bboxes[query].tolist())
        return episode

    def draw_training_pair(self, info: dict) -> dict:
        """Draw the query class and query object of a training image.

        Args:
            info (dict): A training item (with ``oneshot_candidates``).

        Returns:
            dict: The one-shot sample (see :meth:`make_episode`).
        """
        candidates = info['oneshot_candidates']
        if self.class_sampling == 'uniform':
            label = candidates[np.random.randint(len(candidates))]
        else:  # CoAE: rare classes as often as common ones.
            weights = self.class_weights[candidates]
            label = candidates[np.random.choice(
                len(candidates), p=weights / weights.sum())]
        pool = self.pool_without(label, info['img_index'])
        query = pool[np.random.randint(len(pool))]
        return self.make_episode(info, info['img_index'], label, query, -1)

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Draw the training pair (training only) and run the pipeline.

        Args:
            idx (int): Index of the item.

        Returns:
            dict | None: The pipeline's result.
        """
        data_info = self.get_data_info(idx)
        if not self.test_mode:
            # UP-DETR: a new query class and query object every time.
            data_info = self.draw_training_pair(data_info)
        return self.pipeline(data_info)
