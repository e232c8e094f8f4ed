"""The fast inference path: the dense block without autograd (weights prepared once),
layout-keeping concatenation, the downscale's skipped subnets, bf16 restoring within
0.02 dB of fp32, the allocator setting."""

from __future__ import annotations

import pytest
import torch

import sain
from sain import tiling
from sain.imaging import read_image
from sain.metrics import psnr
from sain.models.base import cat_channels
from sain.models.subnet import DenseBlock
from sain.precision import check_precision, inference_autocast, resolve_precision
from sain.runtime import configure_allocator


def _randomize(block: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.1)
    return block


def test_inference_dense_block_equals_the_autograd_forms_and_follows_weight_changes():
    block = _randomize(DenseBlock(9, 3).double(), 0)
    x = torch.randn(2, 9, 7, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    ref = block.forward_concat(x)
    with torch.no_grad():
        out = block(x)  # no grad -> forward_inference
        assert torch.allclose(out, ref, atol=1e-12)
        assert out.is_contiguous(memory_format=torch.channels_last)
        block.conv3.weight.add_(0.5)  # in place: the prepared weights must follow
        assert torch.allclose(block(x), block.forward_concat(x), atol=1e-12)
    block.load_state_dict(_randomize(DenseBlock(9, 3).double(), 1).state_dict())
    with torch.no_grad():
        assert torch.allclose(block(x), block.forward_concat(x), atol=1e-12)
    with torch.enable_grad():
        assert torch.allclose(block(x), block.forward_concat(x), atol=1e-12)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN (torch's CPU builds have it)")
@pytest.mark.parametrize("shape", [(2, 9, 7, 6), (1, 3, 1, 1), (1, 9, 33, 17)])
def test_pointwise_dense_block_equals_the_reference_form(shape):
    from sain.models.subnet import onednn_bf16_supported, pointwise_available

    c_in = shape[1]
    block = _randomize(DenseBlock(c_in, 12 - c_in), 4)
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    assert pointwise_available(x, torch.float32)
    # bf16 only where oneDNN computes it (not on AVX2-only CPUs: the stacked form runs there)
    assert pointwise_available(x, torch.bfloat16) == onednn_bf16_supported()
    assert not pointwise_available(x.double(), torch.float64)  # float64 keeps the stacked form
    with torch.no_grad():
        ref = block.forward_concat(x)
        out = block(x)  # no grad, fp32, CPU -> the pointwise form
        assert block.__dict__["_inference_cache"][0][0] == "pointwise"
        assert torch.allclose(out, ref, atol=2e-4, rtol=1e-4)
        assert out.is_contiguous(memory_format=torch.channels_last)
        nchw = block(x.contiguous())  # the caller's layout is kept
        assert nchw.is_contiguous() and torch.allclose(nchw, ref, atol=2e-4, rtol=1e-4)
        block.conv2.weight.mul_(2)  # in place: the prepared parts must follow
        assert torch.allclose(block(x), block.forward_concat(x), atol=2e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = block(x)
        assert low.dtype == torch.bfloat16
        ref = block.forward_concat(x)
        assert (low.float() - ref).abs().max() < 0.03 * ref.abs().max() + 1e-3
        DenseBlock.pointwise = False
        try:
            assert torch.allclose(block(x), ref, atol=2e-4, rtol=1e-4)
            assert block.__dict__["_inference_cache"][0][0] == "stacked"
        finally:
            DenseBlock.pointwise = True


def test_bf16_without_onednn_bf16_runs_the_stacked_form(monkeypatch):
    """On CPUs where oneDNN has no bf16 (AVX2 only, e.g. AMD Zen 3) its fused ops raise; the
    block must fall back to PyTorch's convolutions, inference and training alike."""
    from sain.models import subnet

    monkeypatch.setattr(subnet, "onednn_bf16_supported", lambda: False)
    block = _randomize(DenseBlock(3, 9), 6).to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 10, 9).contiguous(memory_format=torch.channels_last)
    assert not subnet.pointwise_available(x, torch.bfloat16) and subnet.pointwise_available(x, torch.float32)
    ref = block.forward_concat(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            low = block(x)
        assert block.__dict__["_inference_cache"][0][:2] == ("stacked", torch.bfloat16)
        trained = block(x.requires_grad_())
        (g,) = torch.autograd.grad(trained.float().sum(), [x])
    for out in (low, trained):
        assert out.dtype == torch.bfloat16
        assert (out.float() - ref).abs().max() < 0.03 * ref.abs().max() + 1e-3
    assert torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN (torch's CPU builds have it)")
def test_pointwise_training_forward_has_the_reference_gradients():
    block = _randomize(DenseBlock(9, 3), 5).to(memory_format=torch.channels_last)
    x = torch.randn(2, 9, 11, 13).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(2, 3, 11, 13)
    grads = {}
    for form in ("pointwise", "concat"):
        out = block(x) if form == "pointwise" else block.forward_concat(x)
        grads[form] = (out, *torch.autograd.grad((out * w).sum(), [x, *block.parameters()]))
    for a, b in zip(grads["pointwise"], grads["concat"]):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)


def test_cat_channels_keeps_channels_last():
    a = torch.rand(1, 3, 5, 4).contiguous(memory_format=torch.channels_last)
    b = torch.rand(1, 9, 5, 4)
    out = cat_channels(a, b)
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, torch.cat((a, b), 1))
    assert not torch.cat((a, b), 1).is_contiguous(memory_format=torch.channels_last)  # why it exists
    assert torch.equal(cat_channels(b, a), torch.cat((b, a), 1))


def test_downscale_skips_only_what_does_not_change_the_lr():
    model = _randomize(sain.SAIN(2, e_blocks=2, v_blocks=1), 3).eval()
    hr = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        assert torch.allclose(model.downscale(hr), model(hr)[1], atol=1e-6)


def test_precision_names():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") in ("bf16", "fp32")
    with pytest.raises(ValueError, match=r"unknown precision 'fp8' \(known: auto, fp32, bf16, fp16\)"):
        check_precision("fp8")


@pytest.mark.parametrize(
    "cpuinfo, prefers",
    [
        ("vendor_id\t: GenuineIntel\nflags\t: avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile", True),
        ("vendor_id\t: GenuineIntel\nflags\t: avx2 avx512f avx512_bf16 avx512_fp16", False),
        ("vendor_id\t: AuthenticAMD\nflags\t: avx2 avx512f avx512_bf16", True),
        ("vendor_id\t: AuthenticAMD\nflags\t: avx2", False),
        ("", False),
    ],
)
def test_auto_precision_follows_what_is_fast(monkeypatch, cpuinfo, prefers):
    """``auto``: bf16 on CPUs where it measured faster than fp32 (AMX; AMD's AVX512-bf16), not
    on an Intel CPU with AVX512-bf16 alone (half the fp32 rate there); fp16 on GPUs (bf16 cost
    0.13 dB on an H200, fp16 nothing); training's autocast bf16 on GPUs, as on such CPUs."""
    from sain import precision

    monkeypatch.setattr(precision, "_cpuinfo", lambda: cpuinfo)
    assert precision.cpu_prefers_bf16() is prefers
    assert resolve_precision("auto", "cpu") == ("bf16" if prefers else "fp32")
    assert precision.resolve_amp("auto", torch.device("cpu")) == ("bf16" if prefers else "none")
    assert resolve_precision("auto", "cuda") == "fp16"
    assert precision.cpu_has_bf16() is ("avx512_bf16" in cpuinfo or "amx_bf16" in cpuinfo)


def _cpu(vendor: str, family: int, model: int, flags: str, name: str = "X") -> str:
    block = (
        f"processor\t: {{n}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
        f"model name\t: {name}\nstepping\t: 1\nflags\t\t: {flags}\n"
    )
    return block.format(n=0) + "\n" + block.format(n=1).replace(flags, "")


@pytest.mark.parametrize(
    "cpuinfo, microarch, flags, prefers",
    [
        (_cpu("AuthenticAMD", 25, 1, "fma avx2"), "Zen 3", ["avx2"], False),
        (_cpu("AuthenticAMD", 25, 17, "avx2 avx512f avx512_bf16"), "Zen 4", ["avx2", "avx512f", "avx512_bf16"], True),
        (_cpu("AuthenticAMD", 26, 2, "avx2 avx512f avx512_bf16"), "Zen 5", ["avx2", "avx512f", "avx512_bf16"], True),
        (
            _cpu("GenuineIntel", 6, 143, "avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile"),
            "Sapphire Rapids",
            ["avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"],
            True,
        ),
        (
            _cpu("GenuineIntel", 6, 143, "avx2 avx512f avx512_bf16 avx512_fp16"),
            "Sapphire Rapids",
            ["avx2", "avx512f", "avx512_bf16", "avx512_fp16"],
            False,
        ),
        (_cpu("HygonGenuine", 24, 1, "avx2"), None, ["avx2"], False),
        ("", None, [], False),
    ],
)
def test_cpu_description_names_the_microarchitecture(monkeypatch, cpuinfo, microarch, flags, prefers):
    """Benchmarks record the core, not just "AMD EPYC" (Zen 3 / 4 / 5 differ in AVX-512 width),
    from the first processor's block; the precision choice reads the same parse."""
    from sain import precision

    d = precision.cpu_description(cpuinfo)
    assert d["microarch"] == microarch and d["flags"] == flags and d["prefers_bf16"] is prefers
    assert (microarch or ("unknown CPU" if not cpuinfo else "family 24")) in d["summary"] and (
        "AMX: yes" in d["summary"]
    ) == ("amx_bf16" in flags)
    monkeypatch.setattr(precision, "_cpuinfo", lambda: cpuinfo)
    assert precision.cpu_prefers_bf16() is prefers and precision.cpu_description() == d


def test_sain_models_says_what_auto_precision_does_here(capsys):
    from sain.cli import main
    from sain.precision import cpu_description, resolve_precision

    assert main(["models"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"This machine: {cpu_description()['summary']}.")
    assert ("restores in bf16" in last) == (resolve_precision("auto", "cpu") == "bf16")


def test_bf16_restoring_is_within_0p02_db_of_fp32():
    """The bundled model on a 192x192 crop of the sample photo, JPEG QF 75 LR: the restored
    PSNR-Y at bf16 within 0.02 dB of fp32 (the benchmark checks the full test sets)."""
    model = sain.load_model("sain-x2-jpeg")
    hr = read_image(sain.api.SAMPLE_IMAGE)[None, :, 100:292, 300:492]
    with torch.no_grad():
        lr = torch.round(model.downscale(hr).clamp(0, 1) * 255) / 255
    fp32 = tiling.tiled_upscale(model, lr, tile=96, seed=0, precision="fp32").clamp(0, 1)
    bf16 = tiling.tiled_upscale(model, lr, tile=96, seed=0, precision="bf16").clamp(0, 1)
    p32 = psnr(fp32[0], hr[0], crop_border=2, y_channel=True)
    p16 = psnr(bf16[0], hr[0], crop_border=2, y_channel=True)
    assert abs(p16 - p32) < 0.02, (p32, p16)
    assert not torch.equal(fp32, bf16)  # bf16 really ran


def test_inference_autocast_is_a_no_op_at_fp32():
    with inference_autocast("fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with inference_autocast("bf16"):
        assert torch.is_autocast_enabled("cpu")


def test_allocator_configuration_is_idempotent():
    first = configure_allocator()
    assert configure_allocator() is first


def _photo(tmp_path):
    from PIL import Image

    path = tmp_path / "p.png"
    Image.open(sain.api.SAMPLE_IMAGE).convert("RGB").crop((300, 100, 428, 196)).save(path)
    return path


def test_cli_precision_and_device(tmp_path, capsys):
    from sain import cli

    photo = _photo(tmp_path)
    assert cli.main(["encode", str(photo), "-o", str(tmp_path / "t"), "-q", "--precision", "auto"]) == 0
    thumb = tmp_path / "t" / "p.jpg"
    outs = {}
    for p in ("fp32", "bf16"):
        assert cli.main(["decode", str(thumb), "-o", str(tmp_path / p), "-q", "--precision", p, "--threads", "1"]) == 0
        outs[p] = read_image(tmp_path / p / "p.png")
    # bf16 on a CPU where it is slower than fp32 works but says so
    from sain.precision import cpu_prefers_bf16

    note = "note: bf16 runs slower than fp32 on this CPU"
    assert (note in capsys.readouterr().err) == (not cpu_prefers_bf16())
    hr = read_image(photo)
    scores = {p: psnr(out, hr, crop_border=2, y_channel=True) for p, out in outs.items()}
    d = abs(scores["fp32"] - scores["bf16"])
    assert d < 0.05, d
    # the Python API gives the same bytes as the CLI at the same precision
    api_out = sain.decode_image(thumb, precision="bf16")
    assert torch.equal(api_out, outs["bf16"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["decode", str(thumb), "-o", str(tmp_path / "x"), "--precision", "fp8"])
    assert e.value.code == 2
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["decode", str(thumb), "-o", str(tmp_path / "x"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["sain decode: error: --device cuda asked for, but CUDA is not available"]
        assert not (tmp_path / "x" / "p.png").exists()
    assert cli.main(["decode", str(thumb), "-o", str(tmp_path / "x"), "--threads", "0"]) == 2
