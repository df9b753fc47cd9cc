"""Stage 1, the face latent space: appearance volume, identity, head pose and facial dynamics.

`warping` holds the pose matrices and the differentiable 3D warps; `networks` the encoders, the warp
generators, the canonical 3D U-Net, the renderer and the multi-scale patch discriminator.
"""
