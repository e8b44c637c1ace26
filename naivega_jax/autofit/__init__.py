"""The application: AutoFlux's default search spaces and strategy, and ``fit``."""

from ._spaces import conv_layer_space, default_space, downsample_space, mlp_space, rep_fork_res

__all__ = ["conv_layer_space", "default_space", "downsample_space", "mlp_space", "rep_fork_res"]
