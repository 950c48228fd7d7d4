# Copyright (c) mmdet-updetr contributors. All rights reserved.
"""Safe checkpoints as a hook, for runs started by other tools."""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ..checkpoint import enable_safe_checkpoints


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Take :func:`~mmdet_updetr.engine.enable_safe_checkpoints` at the
    start of a run.

    mmengine 0.10.7's ``Runner.train``, ``Runner.val`` and ``Runner.test``
    call every hook's ``before_run`` before ``load_or_resume`` (and, in
    ``train``, before the weights' initialisation, which may load a
    pre-trained checkpoint); checkpoints are saved later still. So a run
    with this hook in ``custom_hooks`` writes checkpoints that load with
    ``torch.load(weights_only=True)`` and resumes from them, whichever
    script built the runner: our configs list it, so that mmdet's own
    ``tools/train.py`` and ``tools/test.py`` (which do not take the step
    themselves, unlike ours) resume and test on torch >= 2.6.

    Like the function, the hook changes ``HistoryBuffer`` / ``MessageHub``
    and torch's allow-list for the rest of the process.

    Examples:
        >>> custom_hooks = [dict(type='SafeCheckpointHook')]
    """

    # Before any other hook's ``before_run``.
    priority = 'VERY_HIGH'

    def before_run(self, runner: Runner) -> None:
        """Enable safe checkpoints before the runner loads or saves one.

        Args:
            runner (Runner): The runner of the run.
        """
        enable_safe_checkpoints()
