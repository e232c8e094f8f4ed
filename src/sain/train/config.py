"""Training configuration: small TOML files read into typed sections, and written back.

A config file has the sections ``[model]``, ``[data]``, ``[loss]``, ``[optim]`` and
``[run]``; anything left out keeps the paper's default. ``[model]`` holds ``arch`` (a
registered architecture, :func:`sain.models.list_archs`) and that architecture's
constructor arguments, typed by the constructor's annotations; the other sections map onto
the dataclasses below. Values can be overridden from the command line with
``--set section.key=value`` (parsed as TOML values, never ``eval``-ed).
:func:`to_toml` / :func:`save_config` write a config that :func:`load_config` reads back.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..models import RescalingModel, get_arch, list_archs
from .objective import QUANTIZE_GRADS, REC_WEIGHTINGS


class ConfigError(ValueError):
    """An invalid configuration file or override."""


def _arch_class(arch: Any, where: str = "model.arch") -> type[RescalingModel]:
    try:
        return get_arch(arch)
    except ValueError:
        raise ConfigError(f"{where} must be one of {', '.join(list_archs())}, got {arch!r}") from None


class ModelConfig:
    """``[model]``: ``arch`` plus the architecture's constructor arguments as attributes
    (``cfg.model.scale``, ``cfg.model.e_blocks``, ...; defaults from the constructor).

    Setting ``arch`` to another architecture resets the options to its defaults, keeping
    ``scale``; setting an option the architecture does not have is a :class:`ConfigError`.
    """

    def __init__(self, arch: str = "sain", **options: Any):
        object.__setattr__(self, "arch", arch)
        object.__setattr__(self, "options", self._defaults(arch))
        for k, v in options.items():
            setattr(self, k, v)

    @staticmethod
    def _defaults(arch: str) -> dict[str, Any]:
        params = _arch_class(arch).config_fields()
        return {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in params.items()}

    def annotation(self, key: str) -> str:
        """The constructor's annotation of option ``key`` (a string such as ``"int | None"``)."""
        ann = _arch_class(self.arch).config_fields()[key].annotation
        return "" if ann is inspect.Parameter.empty else str(getattr(ann, "__name__", ann))

    def keys(self) -> list[str]:
        return ["arch", *self.options]

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("options", {})
        if name in options:
            return options[name]
        raise AttributeError(f"[model] of arch {self.__dict__.get('arch')!r} has no option {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "arch":
            if value != self.arch:
                scale = self.options.get("scale")
                object.__setattr__(self, "options", self._defaults(value))
                object.__setattr__(self, "arch", value)
                if scale is not None and "scale" in self.options:
                    self.options["scale"] = scale
            return
        if name not in self.options:
            raise ConfigError(f"[model] unknown key {name!r} for arch {self.arch!r} (known: {', '.join(self.keys())})")
        self.options[name] = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ModelConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def __deepcopy__(self, memo: dict) -> ModelConfig:
        return ModelConfig(self.arch, **json.loads(json.dumps(self.options)))

    def copy(self) -> ModelConfig:
        return self.__deepcopy__({})

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, **self.options}

    def build_kwargs(self) -> dict[str, Any]:
        """The constructor arguments of the architecture."""
        return dict(self.options)


@dataclass
class DataConfig:
    train: str = "../shared/datasets/train"
    val: str | None = None  # a folder; None: hold out `val_holdout` training images
    val_holdout: int = 10
    val_crop: int = 256  # centre crop of validation images (0: whole image)
    patch: int = 128
    batch: int = 16
    workers: int = 2
    cache: bool = True  # keep decoded images in memory


@dataclass
class LossConfig:
    codec: str = "jpeg"  # real codec R for the targets: "jpeg" or "webp"
    quality: int = 75  # QF of the real codec and the differentiable JPEG
    lambda_fit: float | None = None  # weight of the LR terms; None: 4 (x2) or 16 (x4)
    lambda_rec: float = 1.0
    lambda_latent: float = 1.0  # IRN: weight of the latent distribution term
    # How the reconstruction term weighs a batch's images (sain.train.objective.rec_term):
    # "sum", the papers (absolute error), or "log" (relative error: the gradient of mean PSNR)
    rec_weighting: str = "sum"
    # Gradient of the 8-bit rounding Q: "identity" everywhere (the papers) or "clamp" (zero
    # where the LR leaves [0, 1], which the 8-bit image cannot hold)
    quantize_grad: str = "identity"


@dataclass
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 1e-5
    clip_grad: float = 10.0
    iters: int = 500_000
    milestones: list[int] = field(default_factory=lambda: [100_000, 200_000, 300_000, 400_000])
    gamma: float = 0.5
    # Train only the parameters whose names start with one of these prefixes (the rest stay
    # frozen at their initial values, e.g. ["comp_operations", "gmm"]: SAIN's V-blocks and
    # latent model); empty: train every parameter.
    train_only: list[str] = field(default_factory=list)
    # Decay of an exponential moving average of the weights (sain.train.ema), validated and
    # exported next to the raw weights; 0: none. E.g. 0.999: an average over ~1,000 steps.
    ema: float = 0.0


@dataclass
class RunConfig:
    seed: int = 10
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    # local processes sharing each step (sain.train.launch): e.g. 2 on a 2-core CPU, each
    # with one thread and half of data.batch; 1: a single process
    procs: int = 1
    # "auto": bf16 on CPUs where it is faster (AMX, AMD AVX512-bf16), bf16 or fp16 on CUDA
    amp: str = "auto"  # or "bf16", "fp16", "none"
    channels_last: bool = True
    log_every: int = 10
    ckpt_every: int = 200
    val_every: int = 1000
    out: str = "runs/sain"
    init: str | None = None  # start a fresh run from these weights (zoo name or file), e.g. "sain-x2-jpeg"


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        out = {s: (self.model.to_dict() if s == "model" else asdict(getattr(self, s))) for s in SECTIONS}
        return out

    def validate(self) -> TrainConfig:
        m, d, loss, o, r = self.model, self.data, self.loss, self.optim, self.run
        checks = [
            (m.scale in (2, 4), f"model.scale must be 2 or 4, got {m.scale!r}"),
            (
                d.patch > 0 and d.patch % (2 * m.scale) == 0,
                f"data.patch must be a positive multiple of {2 * m.scale}, got {d.patch}",
            ),
            (d.batch >= 1, f"data.batch must be >= 1, got {d.batch}"),
            (d.workers >= 0, "data.workers must be >= 0"),
            (loss.codec in ("jpeg", "webp"), f"loss.codec must be 'jpeg' or 'webp', got {loss.codec!r}"),
            (1 <= loss.quality <= 100, f"loss.quality must be in 1..100, got {loss.quality}"),
            (
                loss.rec_weighting in REC_WEIGHTINGS,
                f"loss.rec_weighting must be one of {', '.join(REC_WEIGHTINGS)}, got {loss.rec_weighting!r}",
            ),
            (
                loss.quantize_grad in QUANTIZE_GRADS,
                f"loss.quantize_grad must be one of {', '.join(QUANTIZE_GRADS)}, got {loss.quantize_grad!r}",
            ),
            (o.lr > 0, "optim.lr must be > 0"),
            (o.iters >= 1, "optim.iters must be >= 1"),
            (0.0 <= o.ema < 1.0, f"optim.ema must be in [0, 1), got {o.ema}"),
            (r.amp in ("auto", "bf16", "fp16", "none"), f"run.amp must be auto|bf16|fp16|none, got {r.amp!r}"),
            (r.log_every >= 1 and r.ckpt_every >= 1 and r.val_every >= 1, "run.*_every must be >= 1"),
            (isinstance(r.procs, int) and r.procs >= 1, f"run.procs must be an integer >= 1, got {r.procs!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        return self

    @property
    def lambda_fit(self) -> float:
        if self.loss.lambda_fit is not None:
            return self.loss.lambda_fit
        return 4.0 if self.model.scale == 2 else 16.0


SECTIONS = {f.name: f.type for f in fields(TrainConfig)}


def _section_class(name: str) -> type:
    return {"model": ModelConfig, "data": DataConfig, "loss": LossConfig, "optim": OptimConfig, "run": RunConfig}[name]


_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool}


def _declared_type(ann: str) -> tuple[type | None, type | None]:
    """``(type, element type)`` of an annotation string: ``int | None`` -> ``(int, None)``,
    ``list[int]`` -> ``(list, int)``. (Annotations are strings here: ``from __future__``.)"""
    for part in (p.strip() for p in ann.split("|")):
        if part in _TYPE_NAMES:
            return _TYPE_NAMES[part], None
        if part.startswith("list[") and part.endswith("]"):
            return list, _TYPE_NAMES.get(part[5:-1])
    return None, None


def _coerce_scalar(expected: type, value: Any) -> Any:
    """``value`` as ``expected`` (int -> float, integral float -> int), or ``None`` if it is not one."""
    if expected is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):  # a bool is an int to Python, never a number here
        return None
    if expected is float and isinstance(value, (int, float)):
        return float(value)
    if expected is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, expected) else None


def _annotation(section: Any, key: str, where: str) -> str:
    """The declared type of ``key`` in a section object, or a one-line error for an unknown key."""
    if isinstance(section, ModelConfig):
        if key not in section.keys():
            raise ConfigError(
                f"{where}: unknown key {key!r} for arch {section.arch!r} (known: {', '.join(section.keys())})"
            )
        return "str" if key == "arch" else section.annotation(key)
    names = {f.name: f for f in fields(section)}
    if key not in names:
        raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(names)})")
    return str(names[key].type)


def _coerce(section: Any, key: str, value: Any, where: str) -> Any:
    expected, element = _declared_type(_annotation(section, key, where))
    if expected is None:
        return value
    if expected is list:
        if not isinstance(value, list) or (
            element is not None and any(_coerce_scalar(element, v) is None for v in value)
        ):
            what = f"a list of {element.__name__}" if element else "a list"
            raise ConfigError(f"{where}: {key} must be {what}, got {value!r}")
        return [_coerce_scalar(element, v) for v in value] if element else value
    out = _coerce_scalar(expected, value)
    if out is None:
        if expected is bool:
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        raise ConfigError(f"{where}: {key} must be {expected.__name__}, got {value!r}")
    return out


def from_dict(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig` from a nested dict, rejecting unknown sections/keys."""
    cfg = TrainConfig()
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        obj = getattr(cfg, section)
        if section == "model" and "arch" in values:  # the architecture decides the other keys
            _arch_class(values["arch"], f"{where} [model] arch")
            obj.arch = values["arch"]
        for k, v in values.items():
            if not (section == "model" and k == "arch"):
                setattr(obj, k, _coerce(obj, k, v, f"{where} [{section}]"))
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML config (``None``: the paper's defaults) and apply ``section.key=value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file() and p.with_suffix(".toml").is_file():
            p = p.with_suffix(".toml")
        if not p.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: invalid TOML ({e})") from None
    cfg = from_dict(raw, where=str(path or "defaults"))
    for ov in overrides or []:
        apply_override(cfg, ov)
    return cfg.validate()


def apply_override(cfg: TrainConfig, text: str) -> None:
    """Apply one ``section.key=value`` override (value parsed as a TOML value, or a bare string)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    lhs, rhs = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    if section not in SECTIONS:
        raise ConfigError(f"override {text!r}: unknown section {section!r}")
    try:
        value = tomllib.loads(f"v = {rhs.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = rhs.strip()
    if rhs.strip().lower() in ("none", "null"):
        value = None
    obj = getattr(cfg, section)
    if section == "model" and key == "arch":
        _arch_class(value, f"override {text!r}: model.arch")
    elif value is None:
        _annotation(obj, key, f"override {text!r}")
    else:
        value = _coerce(obj, key, value, f"override {text!r}")
    setattr(obj, key, value)


def _copy_section(obj: Any) -> Any:
    return obj.copy() if isinstance(obj, ModelConfig) else dataclasses.replace(obj)


def replace(cfg: TrainConfig, **sections: dict[str, Any]) -> TrainConfig:
    """A copy of ``cfg`` with some section fields replaced (``replace(cfg, run={"iters": 5})``)."""
    new = dataclasses.replace(cfg, **{s: _copy_section(getattr(cfg, s)) for s in SECTIONS})
    for s, vals in sections.items():
        for k, v in vals.items():
            setattr(getattr(new, s), k, v)
    return new


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def to_toml(cfg: TrainConfig) -> str:
    """``cfg`` as a TOML document that :func:`load_config` reads back to an equal config
    (``None`` values are left out: they are the defaults)."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if v is not None:
                lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def save_config(cfg: TrainConfig, path: str | Path) -> Path:
    """Write ``cfg`` as TOML to ``path`` (atomically)."""
    from ..fileio import write_bytes_atomic

    p = Path(path)
    write_bytes_atomic(p, to_toml(cfg).encode())
    return p
