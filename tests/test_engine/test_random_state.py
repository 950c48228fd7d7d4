"""Random states as safe checkpoint values, and per-sample streams."""
import random

import numpy as np
import torch

from mmdet_updetr.engine import (get_random_state, sample_random, sample_seeds,
                                 set_random_state)


def _draws():
    return (random.random(), float(np.random.rand()), float(torch.rand(1)),
            float(np.random.randn()))


def test_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    np.random.randn()  # a cached Gaussian is part of numpy's state
    path = tmp_path / 'state.pth'
    torch.save(dict(rank_states=[get_random_state()]), path)
    expected = _draws()
    _draws()  # move on
    state = torch.load(path, weights_only=True)['rank_states'][0]
    set_random_state(state)
    assert _draws() == expected


def test_sample_stream_is_keyed_and_leaves_the_caller_alone():
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    outer = get_random_state()
    with sample_random(0, 1, 5):
        first = _draws()
    # the caller's stream continues as if the block had not run
    after = _draws()
    set_random_state(outer)
    assert _draws() == after
    with sample_random(0, 1, 5):
        assert _draws() == first  # same (seed, epoch, index)
    with sample_random(0, 2, 5):
        assert _draws() != first  # another epoch
    with sample_random(0, 1, 6):
        assert _draws() != first  # another sample
    assert sample_seeds(0, 1, 5).dtype == np.uint32
    assert len(set(sample_seeds(0, 1, 5).tolist())) == 3
