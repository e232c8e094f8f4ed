"""The learned function inside every coupling: a 5-convolution dense block.

    x ─conv1─lrelu─┐
    [x,o1] ─conv2─lrelu─┐
    [x,o1,o2] ─conv3─lrelu─┐
    [x,o1,o2,o3] ─conv4─lrelu─┐
    [x,o1,o2,o3,o4] ─conv5─> out

3x3 convolutions, growth 32, LeakyReLU(0.2). Initialisation as the reference: Xavier
normal scaled by 0.1 for conv1-4, zeros for conv5, so a fresh coupling is the identity.
Parameter names (``conv1..conv5``) match the reference checkpoints.

Speed: a convolution of a concatenation is the sum of the convolutions of its parts.
The default (``fused``) form therefore never concatenates feature maps: each feature
``f_j`` (``f_0 = x``) is convolved once with the stacked slices of the weights of every
later layer that reads it, and the result is added in place into one preallocated
buffer ``acc`` that holds the pre-activations of all five layers side by side (the first
convolution also carries all five biases). Its backward is written by hand
(:class:`_FusedDenseBlock`): the output gradients of all layers live in one buffer laid
out like ``acc``, so every stacked convolution is differentiated by a single
``convolution_backward`` call on a slice of it, and the LeakyReLU derivative is taken from
the saved activations. Autograd's version of the same computation spends most of its time
outside the convolutions (split/cat backward, layout conversions of the gathered
gradients, out-of-place additions). Same parameters, same function, same gradients (up to
float rounding; tests/test_models.py checks both in float64). Under autocast the block
computes in the autocast dtype, as ``nn.Conv2d`` would. :meth:`DenseBlock.forward_concat`
is the straightforward reference form.

Inference on a CPU (:meth:`DenseBlock.forward_inference`) goes one step further where
oneDNN's fused convolutions are available (``torch.ops.mkldnn._convolution_pointwise``):
each layer ``k`` has an accumulator of its own (dense, channels-last), every part
``W_kj`` of its weight (the columns that read ``f_j``) is convolved with ``f_j`` and
*summed into the accumulator by the convolution itself* (oneDNN's sum post-op), and the
first layer's LeakyReLU is fused into its convolution; the other LeakyReLUs run in place
on the finished accumulators. 15 convolutions instead of 5 stacked ones, but no separate
addition passes: measured 1.4x (fp32) and 1.6-1.7x (bf16) faster per block than the
stacked form (one 384x384 block, 1 thread, AVX512-bf16 CPU without AMX); the whole
network's speed is measured by ``benchmarks/bench_inference.py``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

SLOPE = 0.2


def memory_format_of(x: Tensor) -> torch.memory_format:
    """The memory format to keep: channels-last when ``x`` is stored that way."""
    # by the strides, so that channel slices of a channels-last tensor count as channels-last
    if x.dim() == 4 and x.shape[2] * x.shape[3] > 1 and x.stride(1) < min(x.stride(2), x.stride(3)):
        return torch.channels_last
    return torch.contiguous_format


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype ``nn.Conv2d`` would compute in: the autocast dtype where autocast applies."""
    dev = x.device.type
    if x.dtype != torch.float64 and torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return x.dtype


def feature_columns(j: int, c_in: int, growth: int) -> slice:
    """The input channels of feature ``f_j`` (``f_0 = x``) in a layer's weight."""
    lo = 0 if j == 0 else c_in + (j - 1) * growth
    return slice(lo, c_in if j == 0 else lo + growth)


def stack_weights(weights, biases, c_in: int, growth: int, dtype: torch.dtype) -> tuple[list[Tensor], Tensor]:
    """The stacked weights of the fused form: stack ``j`` convolves feature ``f_j`` (``f_0 = x``)
    for every layer ``k >= j`` that reads it; all five biases go with the first stack."""
    weights = [w.to(dtype) for w in weights]
    stacks = []
    for j in range(5):  # rows: the layers k >= j; columns: the input channels of f_j
        cols = feature_columns(j, c_in, growth)
        stacks.append(torch.cat([weights[k][:, cols] for k in range(j, 5)], 0) if j < 4 else weights[4][:, cols])
    return stacks, torch.cat(list(biases)).to(dtype)


def _fused_forward(
    x: Tensor, stacks: list[Tensor], bias: Tensor, growth: int, dtype: torch.dtype, keep: bool
) -> tuple[Tensor, list[Tensor], Tensor]:
    """``(xs, feats, out)`` of the fused dense block; ``feats`` only when ``keep`` (for backward)."""
    fmt = memory_format_of(x)
    with torch.autocast(x.device.type, enabled=False):
        xs = x.to(dtype).contiguous(memory_format=fmt)
        acc = F.conv2d(xs, stacks[0], bias, padding=1)
        feats = []
        n, _, h, w = acc.shape
        for j in range(1, 5):
            # the activation straight into a dense tensor of the kept layout (one pass, no copy)
            f = torch.empty((n, growth, h, w), dtype=acc.dtype, device=acc.device, memory_format=fmt)
            torch._C._nn.leaky_relu(acc[:, (j - 1) * growth : j * growth], SLOPE, out=f)
            if keep:
                feats.append(f)
            acc[:, j * growth :] += F.conv2d(f, stacks[j], padding=1)
            del f
        out = acc[:, 4 * growth :].contiguous(memory_format=fmt)
    return xs, feats, out


_MKLDNN = getattr(torch.ops, "mkldnn", None)
_PW_DTYPES = (torch.float32, torch.bfloat16)


@functools.cache
def onednn_bf16_supported() -> bool:
    """Whether oneDNN computes bf16 on this CPU (AVX512 bw/vl/dq, AVX-NE-CONVERT or AMX).

    oneDNN's bf16 convolutions refuse plain AVX2 CPUs (e.g. AMD Zen 3), where its fused ops
    would raise; PyTorch's own convolutions still run bf16 there (slowly, through its
    reference kernels), so the dense block falls back to them.
    """
    check = getattr(_MKLDNN, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


def pointwise_available(x: Tensor, dtype: torch.dtype) -> bool:
    """Whether :func:`_pointwise_forward` applies: a CPU tensor, fp32 (or bf16 where oneDNN
    computes it, :func:`onednn_bf16_supported`), oneDNN present."""
    return (
        x.device.type == "cpu"
        and dtype in _PW_DTYPES
        and x.dim() == 4
        and torch.backends.mkldnn.is_available()
        and _MKLDNN is not None
        and hasattr(_MKLDNN, "_convolution_pointwise_")
        and (dtype != torch.bfloat16 or onednn_bf16_supported())
    )


def split_weights(weights, biases, c_in: int, growth: int, dtype: torch.dtype) -> tuple[dict, list[Tensor]]:
    """``{(k, j): W_kj}``: the columns of layer ``k``'s weight that read feature ``j``
    (``f_0 = x``), each dense and channels-last, in ``dtype``; and the biases."""
    parts = {
        (k, j): w[:, feature_columns(j, c_in, growth)].to(dtype).contiguous(memory_format=torch.channels_last)
        for k, w in enumerate(weights)
        for j in range(k + 1)
    }
    return parts, [b.to(dtype) for b in biases]


_P1 = [1, 1]


def _pointwise_forward(
    x: Tensor, parts: dict, biases: list[Tensor], dtype: torch.dtype
) -> tuple[Tensor, list[Tensor], Tensor]:
    """``(xs, feats, out)`` of the dense block by oneDNN convolutions that sum into
    per-layer accumulators (see the module docstring); ``x`` on the CPU, fp32 or bf16.
    ``feats`` are the activations ``f_1..f_4`` (the finished accumulators)."""
    assert _MKLDNN is not None
    conv, conv_into = _MKLDNN._convolution_pointwise, _MKLDNN._convolution_pointwise_.binary
    with torch.autocast("cpu", enabled=False):
        xs = x.to(dtype).contiguous(memory_format=torch.channels_last)
        # f_1 = lrelu(conv1(x)), the activation fused; the other layers start from their x part
        f = conv(xs, parts[0, 0], biases[0], _P1, _P1, _P1, 1, "leaky_relu", [SLOPE], "")
        acc = [f] + [conv(xs, parts[k, 0], biases[k], _P1, _P1, _P1, 1, "none", [], "") for k in range(1, 5)]
        for j in range(1, 5):  # f_j is ready: add its contribution to every later layer
            for k in range(j, 5):
                conv_into(acc[k], f, parts[k, j], None, _P1, _P1, _P1, 1, "add", 1.0, None, [], None)
            if j < 4:
                f = torch._C._nn.leaky_relu_(acc[j], SLOPE)  # layer j+1 is complete
        return xs, acc[:4], acc[4]


class _FusedDenseBlock(torch.autograd.Function):
    """The dense block with a hand-written backward (see the module docstring).

    Inputs: ``x``, then the five weights, then the five biases; ``growth`` and the
    compute dtype. Channel layout of the buffers ``acc`` / ``grad``: ``[l1 | l2 | l3 | l4 | out]``
    (``growth`` channels per hidden layer, ``c_out`` for the output), so stacked
    convolution ``j`` (of ``f_j``) writes / reads the suffix starting at layer ``j``.
    """

    @staticmethod
    def forward(ctx, x, w1, w2, w3, w4, w5, b1, b2, b3, b4, b5, growth: int, dtype: torch.dtype):
        weights, biases = (w1, w2, w3, w4, w5), (b1, b2, b3, b4, b5)
        stacks, bias = stack_weights(weights, biases, x.shape[1], growth, dtype)
        fmt = memory_format_of(x)
        if DenseBlock.pointwise_training and fmt == torch.channels_last and pointwise_available(x, dtype):
            parts, bs = split_weights(weights, biases, x.shape[1], growth, dtype)
            xs, feats, out = _pointwise_forward(x, parts, bs, dtype)
        else:
            xs, feats, out = _fused_forward(x, stacks, bias, growth, dtype, keep=True)
        ctx.save_for_backward(xs, *feats, *stacks)
        ctx.growth, ctx.fmt, ctx.x_dtype = growth, fmt, x.dtype
        ctx.param_dtypes = [w.dtype for w in (w1, w2, w3, w4, w5)]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        xs, f1, f2, f3, f4, *stacks = ctx.saved_tensors
        feats = [xs, f1, f2, f3, f4]
        growth, fmt = ctx.growth, ctx.fmt
        dtype = xs.dtype
        need_x = ctx.needs_input_grad[0]
        need_w = any(ctx.needs_input_grad[1:6])
        need_b = any(ctx.needs_input_grad[6:11])
        n, _, h, w = g_out.shape
        c_out = g_out.shape[1]
        with torch.autocast(g_out.device.type, enabled=False):
            grad = torch.empty((n, 4 * growth + c_out, h, w), dtype=dtype, device=g_out.device, memory_format=fmt)
            g_out = g_out.to(dtype).contiguous(memory_format=fmt)
            grad[:, 4 * growth :] = g_out
            g_stacks: list[Tensor | None] = [None] * 5
            for j in range(4, -1, -1):
                gj = g_out if j == 4 else grad[:, j * growth :].contiguous(memory_format=fmt)
                mask = [need_x if j == 0 else True, need_w, j == 0 and need_b]
                bias_sizes = [gj.shape[1]] if j == 0 else None
                gi, gw, gb = torch.ops.aten.convolution_backward(
                    gj, feats[j], stacks[j], bias_sizes, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
                )
                g_stacks[j] = gw
                if j > 0:  # through the LeakyReLU that made f_j, into layer j's pre-activation
                    # sign(f_j) == sign(pre-activation), so f_j serves as LeakyReLU's input
                    torch.ops.aten.leaky_relu_backward.grad_input(
                        gi, feats[j], SLOPE, False, grad_input=grad[:, (j - 1) * growth : j * growth]
                    )
                else:
                    g_x, g_bias = gi, gb
        grads_w: list[Tensor | None] = [None] * 5
        if need_w:
            for k in range(5):  # layer k's weight: rows (k - j) * growth... of stacks j <= k
                parts = [
                    g_stacks[j][(k - j) * growth : (k - j) * growth + (growth if k < 4 else c_out)]
                    for j in range(k + 1)
                ]
                grads_w[k] = torch.cat(parts, 1).to(ctx.param_dtypes[k])
        grads_b: list[Tensor | None] = [None] * 5
        if need_b:
            widths = [growth] * 4 + [c_out]
            grads_b = [g.to(ctx.param_dtypes[k]) for k, g in enumerate(g_bias.split(widths))]
        gx = g_x.to(ctx.x_dtype) if need_x else None
        return (gx, *grads_w, *grads_b, None, None)


class DenseBlock(nn.Module):
    """Dense block subnet ``(N, c_in, h, w) -> (N, c_out, h, w)``."""

    def __init__(self, c_in: int, c_out: int, growth: int = 32):
        super().__init__()
        self.c_in, self.c_out, self.growth = c_in, c_out, growth
        self.conv1 = nn.Conv2d(c_in, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_in + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(c_in + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(c_in + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(c_in + 4 * growth, c_out, 3, 1, 1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.xavier_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        nn.init.zeros_(self.conv5.weight)
        nn.init.zeros_(self.conv5.bias)  # type: ignore[arg-type]

    fused: bool = True

    @property
    def receptive_radius(self) -> int:
        """Pixels an output sees on each side: the longest chain, conv1 -> ... -> conv5."""
        r = 0
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            k, d = conv.kernel_size, conv.dilation
            r += max((k[0] - 1) // 2 * d[0], (k[1] - 1) // 2 * d[1])
        return r

    def forward(self, x: Tensor) -> Tensor:
        if not self.fused:
            return self.forward_concat(x)
        if torch.is_grad_enabled():
            return self.forward_fused(x)
        return self.forward_inference(x)

    def _convs(self) -> tuple[nn.Conv2d, ...]:
        return (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5)

    def inference_weights(self, dtype: torch.dtype, device: torch.device, form: str = "stacked") -> tuple:
        """The weights of an inference ``form`` in ``dtype`` on ``device``: ``"stacked"``
        (:func:`stack_weights`) or ``"pointwise"`` (:func:`split_weights`). Prepared once
        and kept until a parameter changes (in-place updates bump its version, a new
        tensor its address)."""
        params: list[Tensor] = [p for c in self._convs() for p in (c.weight, c.bias) if p is not None]
        key = (form, dtype, device, tuple((p.data_ptr(), p._version) for p in params))
        cache = self.__dict__.get("_inference_cache")
        if cache is None or cache[0] != key:
            make = split_weights if form == "pointwise" else stack_weights
            with torch.no_grad():
                ws = [c.weight.to(device) for c in self._convs()]
                bs = [c.bias.to(device) for c in self._convs()]  # type: ignore[union-attr]
                cache = (key, *make(ws, bs, self.c_in, self.growth, dtype))
            self.__dict__["_inference_cache"] = cache
        return cache[1], cache[2]

    #: use :func:`_pointwise_forward` for inference / for the training forward where it
    #: applies (set False to compare)
    pointwise: bool = True
    pointwise_training: bool = True

    @torch.no_grad()
    def forward_inference(self, x: Tensor) -> Tensor:
        """The fused form for inference: no autograd record, no saved features, weights
        prepared once per precision (:meth:`inference_weights`); on a CPU with oneDNN the
        convolutions sum into per-layer accumulators (:func:`_pointwise_forward`)."""
        dtype = _compute_dtype(x)
        if self.pointwise and pointwise_available(x, dtype):
            parts, biases = self.inference_weights(dtype, x.device, "pointwise")
            return _pointwise_forward(x, parts, biases, dtype)[2].to(memory_format=memory_format_of(x))
        stacks, bias = self.inference_weights(dtype, x.device)
        return _fused_forward(x, stacks, bias, self.growth, dtype, keep=False)[2]

    def forward_fused(self, x: Tensor) -> Tensor:
        """Dense block without concatenations, with the hand-written backward."""
        convs = (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5)
        return _FusedDenseBlock.apply(
            x, *(c.weight for c in convs), *(c.bias for c in convs), self.growth, _compute_dtype(x)
        )

    def forward_concat(self, x: Tensor) -> Tensor:
        """The reference formulation with concatenations."""
        o1 = F.leaky_relu(self.conv1(x), SLOPE)
        o2 = F.leaky_relu(self.conv2(torch.cat((x, o1), 1)), SLOPE)
        o3 = F.leaky_relu(self.conv3(torch.cat((x, o1, o2), 1)), SLOPE)
        o4 = F.leaky_relu(self.conv4(torch.cat((x, o1, o2, o3), 1)), SLOPE)
        return self.conv5(torch.cat((x, o1, o2, o3, o4), 1))
