"""The GPU training cluster: scale-to-zero EC2 Auto Scaling with spot, checkpoints and idle shutdown."""
