"""Where a benchmark's time goes: the share spent inside convolution kernels.

Shared by ``bench_train_step.py`` and ``bench_inference.py``. The convolution kernels'
time (forward and backward, oneDNN's fused ones included) is the part of a run that only
faster convolutions can shorten; the rest (element-wise passes, copies, casts, the
latent sampler, Python) is overhead that a leaner path can remove. So ``reference /
conv_s`` bounds the speed-up any rewrite *around* these kernels can reach.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CONV_OPS = (
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::mkldnn_convolution_backward",
    "aten::_slow_conv2d_forward",
    "aten::_slow_conv2d_backward",
    "mkldnn::_convolution_pointwise",  # oneDNN's fused convolutions (the dense blocks' forward)
    "mkldnn::_convolution_pointwise_",
)


def conv_time(fn: Callable[[], object], repeats: int = 2) -> tuple[float, float]:
    """``(conv_s, wall_s)`` of the profiled run of ``fn()`` with the least convolution time:
    seconds inside :data:`CONV_OPS` and the run's wall seconds under the profiler."""
    from torch.profiler import ProfilerActivity, profile

    out = []
    for _ in range(repeats):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            fn()
            wall = time.perf_counter() - t0
        conv = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in CONV_OPS) / 1e6
        out.append((conv, wall))
    return min(out)
