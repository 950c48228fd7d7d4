from .patch_reconstruction_loss import (PatchReconstructionLoss,
                                        patch_reconstruction_loss)

__all__ = ['PatchReconstructionLoss', 'patch_reconstruction_loss']
