"""Anyone's model and images: what ``visualize`` and ``occlude`` run on.

:func:`load_model` resolves a model given as

* a shipped name (``zfnet-mini``, ``alexnet-mini``: :func:`zfbook.pretrained`),
* a checkpoint written by ``python -m zfbook train`` (a path), or
* ``torchvision:NAME`` — any torchvision classifier, with ``weights="DEFAULT"`` (or another
  name of its weights enum) downloaded by torchvision when online, or built without weights
  (seeded, so the same command gives the same maps),

to a :class:`Source`: the model in eval mode with the preprocessing it expects. Ours is the
checkpoint's own (resize to the preset's side, centre crop, mean image subtracted, scaled:
``model.preprocess``); torchvision's is its weights' ``transforms()`` (resize, centre crop,
ImageNet mean and std), the same numbers without weights.

A torchvision model whose ``forward`` is just its children in order (with a flatten before
the classifier: AlexNet, VGG, ResNet, MobileNet, EfficientNet, …) is rebuilt as an
``nn.Sequential`` of those children under the same names, which is what
:mod:`zfbook.occlusion` sweeps (the check runs both on one input and compares). The
deconvnet (:mod:`zfbook.deconv`) reads the model itself and refuses, naming the module,
architectures it cannot invert (BatchNorm, residual additions); occlusion has no such limit.

:func:`pretrained_weights_available` says, without waiting on the network, whether a
torchvision model's weights can be had (in torch.hub's cache, or their server answers within
seconds); :func:`weights_skip_message` is the one line a notebook prints instead when not.

:func:`read_images` reads a folder of JPEG/PNG files (grayscale, palette and RGBA images
are converted to RGB, transparency over white); a file that cannot be decoded is skipped
with one warning line, and a folder with no readable image is refused.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_checkpoint, manifest, model_from_checkpoint, parse_shipped_name, pretrained
from .models import ConvNet, LAYERS

__all__ = ["Source", "load_model", "read_images", "IMAGE_SUFFIXES", "Normalize", "as_chain",
           "shipped_names", "pretrained_weights_available", "weights_skip_message", "weights_file",
           "OFFLINE_ENV"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Normalize:
    """torchvision-style preprocessing of one PIL image: resize the shorter side to
    ``resize``, centre-crop ``crop``, scale to [0, 1], subtract ``mean`` and divide by
    ``std`` (per channel). :meth:`display` undoes it for viewing."""

    def __init__(self, resize: int, crop: int, mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
                 transform=None):
        self.resize, self.crop = int(resize), int(crop)
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self._transform = transform

    def __repr__(self) -> str:
        return f"Normalize(resize={self.resize}, crop={self.crop})"

    def __call__(self, image) -> torch.Tensor:
        if self._transform is not None:
            return self._transform(image)
        from torchvision.transforms import v2 as T
        t = T.Compose([T.PILToTensor(), T.Resize(self.resize, antialias=True),
                       T.CenterCrop(self.crop), T.ToDtype(torch.float32, scale=True)])
        return (t(image) - self.mean) / self.std

    def display(self, x: torch.Tensor) -> np.ndarray:
        """A preprocessed (C, H, W) image as HWC in [0, 1]."""
        x = x.detach().float().cpu()
        x = x[0] if x.dim() == 4 else x
        return (x * self.std + self.mean).clamp(0, 1).permute(1, 2, 0).numpy()


class _Ours:
    """A zfbook checkpoint's preprocessing applied to one PIL image."""

    def __init__(self, model: ConvNet):
        from .data import resize_center
        self.preprocess = model.preprocess
        self._resize = resize_center(model.preset.resize)
        self.crop = model.preset.crop

    def __call__(self, image) -> torch.Tensor:
        from torchvision.transforms.v2.functional import pil_to_tensor
        return self.preprocess.center(self._resize(pil_to_tensor(image)))[0]

    def display(self, x: torch.Tensor) -> np.ndarray:
        return self.preprocess.display(x)


@dataclass
class Source:
    """A model ready to look into: ``model`` (eval mode), ``transform`` (PIL image → the
    preprocessed (C, H, W) tensor the model takes; its ``display`` undoes it for viewing),
    ``classes`` (names, or None), ``layers`` (the names :func:`zfbook.models.layer_module`
    accepts), ``conv_layers`` (the rectified conv outputs, a sensible default for
    ``visualize``), ``probe`` (the default layer of Fig. 7b), ``name`` and ``chain``
    (whether the model is a chain occlusion can sweep)."""
    model: nn.Module
    transform: object
    name: str
    classes: list | None = None
    layers: list = field(default_factory=list)
    conv_layers: list = field(default_factory=list)
    probe: str | None = None
    chain: bool = True

    @property
    def crop(self) -> int:
        return self.transform.crop

    def class_name(self, c: int) -> str:
        return str(self.classes[c]) if self.classes and 0 <= c < len(self.classes) else str(c)


def shipped_names() -> list[str]:
    """The shipped models (``data/MANIFEST.json``), without their snapshots."""
    return sorted(model for model, epoch in filter(None, map(parse_shipped_name, manifest())) if epoch is None)


def _usage(model: str) -> str:
    return (f"unknown model {model!r}; valid models are: {', '.join(shipped_names())}, the path "
            f"of a checkpoint written by 'python -m zfbook train', or torchvision:NAME "
            f"(e.g. torchvision:alexnet)")


def load_model(spec: str, weights: str | None = None, *, seed: int = 0) -> Source:
    """Resolve ``spec`` (a shipped name, a checkpoint path or ``torchvision:NAME``) to a
    :class:`Source`. ``weights`` is for torchvision models only (``DEFAULT`` or a member of
    the model's weights enum); without it a torchvision model is built untrained with
    ``torch.manual_seed(seed)``."""
    spec = str(spec)
    if spec.startswith("torchvision:"):
        return _torchvision(spec.split(":", 1)[1], weights, seed)
    if weights is not None:
        raise ValueError(f"--weights is for torchvision models only (torchvision:NAME), not {spec!r}")
    if spec in shipped_names():
        model, name = pretrained(spec), spec
    elif Path(spec).is_file():
        model, name = model_from_checkpoint(load_checkpoint(spec), source=spec), Path(spec).name
    elif Path(spec).exists():
        raise ValueError(f"{spec} is a folder; --model takes a checkpoint file (e.g. RUN/last.pt)")
    else:
        raise ValueError(_usage(spec))
    model.eval()
    return Source(model, _Ours(model), name, list(map(str, model.classes)), list(LAYERS),
                  list(LAYERS[:5]), "conv5", True)


def _torchvision(name: str, weights: str | None, seed: int) -> Source:
    import torchvision.models as tvm
    _check_classifier(name)
    w = None if weights is None else _weights(name, weights)
    if w is None:
        torch.manual_seed(seed)
        model = tvm.get_model(name, weights=None)
        transform, classes = Normalize(256, 224), None
    else:
        from .data.real import _socket_timeout
        model = tvm.get_model(name, weights=None)
        try:  # torch.hub prints a "Downloading" line even when it fails: keep it quiet
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                    _socket_timeout(DOWNLOAD_TIMEOUT):  # a stalled download fails, not hangs
                state = w.get_state_dict(progress=False, check_hash=True)
        except Exception as e:  # URLError, hash mismatch, a damaged cache file, ...
            reason = getattr(e, "reason", None) or e
            raise RuntimeError(f"cannot download the {w} weights of torchvision:{name} ({reason}); "
                               f"offline? Download them once when online (they are cached under "
                               f"~/.cache/torch/hub), or leave out --weights for an untrained model") from None
        model.load_state_dict(state)
        t = w.transforms()
        resize = t.resize_size[0] if isinstance(t.resize_size, (list, tuple)) else t.resize_size
        crop = t.crop_size[0] if isinstance(t.crop_size, (list, tuple)) else t.crop_size
        transform = Normalize(resize, crop, t.mean, t.std, transform=t)
        classes = list(w.meta.get("categories") or []) or None
    model.eval()
    chain = as_chain(model, transform.crop)
    ok = chain is not None
    model = chain if ok else model
    layers = [n for n, _ in model.named_modules() if n]
    convs = _rectified_convs(model)
    return Source(model, transform, f"torchvision:{name}", classes, layers, convs,
                  _probe(model, transform.crop) if ok else None, ok)


# ----------------------------------------------------------------- pretrained weights
#: set this environment variable (to anything but empty) and
#: :func:`pretrained_weights_available` says no without looking: the book is executed and
#: checked this way (the Makefile sets it), so that its pages do not depend on the network
OFFLINE_ENV = "ZFBOOK_OFFLINE"
#: seconds a weights download may wait on the network before it fails
DOWNLOAD_TIMEOUT = 60.0


def _check_classifier(name: str) -> None:
    import torchvision.models as tvm
    valid = tvm.list_models(module=tvm)
    if name not in valid:
        raise ValueError(f"unknown torchvision classifier {name!r}; valid names are: {', '.join(valid)}")


def _weights(name: str, weights: str = "DEFAULT"):
    """torchvision:``name``'s weights enum member ``weights`` (``DEFAULT`` or a member name)."""
    import torchvision.models as tvm
    _check_classifier(name)
    enum = tvm.get_model_weights(name)
    choices = ["DEFAULT"] + [m.name for m in enum]
    if weights not in choices:
        raise ValueError(f"unknown weights {weights!r} for torchvision:{name}; valid weights "
                         f"are: {', '.join(choices)}")
    return enum.DEFAULT if weights == "DEFAULT" else enum[weights]


def weights_file(name: str, weights: str = "DEFAULT") -> Path:
    """Where torch.hub keeps torchvision:``name``'s ``weights`` once downloaded
    (``$TORCH_HOME/hub/checkpoints/FILE``), whether or not they are there."""
    url = _weights(name, weights).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _answers(url: str, timeout: float) -> bool:
    """Whether the server of ``url`` answers a HEAD request within ``timeout`` seconds. The
    request runs in a daemon thread that is waited for ``timeout`` seconds at most, so a name
    lookup that hangs (which no socket timeout bounds) cannot hold the caller longer."""
    answer = []

    def ask():
        try:
            request = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer.append(response.status < 400)
        except Exception:  # no network, no name resolution, refused, HTTP error, ...
            answer.append(False)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    asking.join(timeout)
    return bool(answer) and answer[0]


def pretrained_weights_available(name: str = "alexnet", weights: str = "DEFAULT", *,
                                 timeout: float = 3.0) -> bool:
    """Whether ``load_model(f"torchvision:{name}", weights)`` can get its weights: they are in
    torch.hub's cache (:func:`weights_file`), or their server answers within ``timeout``
    seconds. Always False when the environment variable :data:`OFFLINE_ENV` is set."""
    w = _weights(name, weights)  # an unknown name or weights fails here, offline or not
    if os.environ.get(OFFLINE_ENV):
        return False
    if weights_file(name, weights).is_file():
        return True
    return _answers(w.url, timeout)


def weights_skip_message(name: str = "alexnet", weights: str = "DEFAULT") -> str:
    """The one line a notebook cell prints instead of running when the weights are not at
    hand, e.g. "Skipped: needs the internet for AlexNet's weights (233 MB); runs on Colab."
    (short enough for a notebook's 79-character column)"""
    w = _weights(name, weights)
    label = type(w).__name__.removesuffix("_Weights")
    size = w.meta.get("_file_size")
    size = f" ({size:.0f} MB)" if size else ""
    return f"Skipped: needs the internet for {label}'s weights{size}; runs on Colab."


def as_chain(model: nn.Module, size: int = 224) -> nn.Sequential | None:
    """``model`` as an ``nn.Sequential`` of its children under the same names (a flatten
    inserted where a 4-d output meets a Linear), if that computes exactly what
    ``model(x)`` does on a (1, 3, size, size) input; else None."""
    if isinstance(model, (ConvNet, nn.Sequential)):
        return model
    parts, x = OrderedDict(), torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        try:
            want = model(x)
            h = x
            for n, m in model.named_children():
                first = next(iter(m.children()), m) if isinstance(m, nn.Sequential) else m
                if h.dim() > 2 and isinstance(first, (nn.Linear, nn.Dropout)):
                    parts["flatten"] = nn.Flatten()
                    h = torch.flatten(h, 1)
                parts[n] = m
                h = m(h)
        except Exception:
            return None
        if not isinstance(want, torch.Tensor) or h.shape != want.shape or not torch.allclose(h, want, atol=1e-5, rtol=1e-4):
            return None
    return nn.Sequential(parts).eval()


def _rectified_convs(model: nn.Module) -> list[str]:
    """The ReLU modules that directly follow a Conv2d (the rectified conv outputs)."""
    out, prev = [], None
    for n, m in model.named_modules():
        if not n or list(m.children()):
            continue
        if isinstance(m, nn.ReLU) and isinstance(prev, nn.Conv2d):
            out.append(n)
        prev = m
    return out


def _probe(model: nn.Sequential, size: int) -> str | None:
    """Fig. 7b's default layer for a chain: its last ReLU or block (a module with children)
    whose output is still a map larger than 1×1 (else the last such step)."""
    from .occlusion import _chain
    h = torch.zeros(1, 3, size, size)
    best = last = None
    with torch.no_grad():
        for n, m in _chain(model):
            h = m(h)
            if h.dim() == 4 and h.shape[-1] * h.shape[-2] > 1:
                last = n
                if isinstance(m, nn.ReLU) or list(m.children()):
                    best = n
    return best or last


# ----------------------------------------------------------------------------- images
def _to_rgb(image):
    """PIL image → RGB; transparency is composited over white."""
    from PIL import Image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")


def image_files(folder) -> list[Path]:
    """The JPEG/PNG files under ``folder`` (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; --images takes a folder of JPEG/PNG files")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def open_image(path):
    """One image file as an RGB PIL image (raises ``OSError`` naming the file if it cannot be
    decoded, or is too elongated to resize: :func:`zfbook.data.real.check_image_size`, from
    the header, before its pixels are read)."""
    from PIL import Image, UnidentifiedImageError
    from .data.real import check_image_size
    try:
        with Image.open(path) as im:
            try:
                check_image_size(im.size)  # from the header, before any pixel is decoded
            except ValueError as e:
                refused = e
            else:
                im.load()
                return _to_rgb(im)
    except UnidentifiedImageError:
        raise OSError(f"{path}: not an image PIL can decode") from None
    except (SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise OSError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    except OSError as e:
        raise OSError(f"{path}: not a readable image ({e})") from None
    raise OSError(f"{path}: {refused}")


def read_images(folder, transform, *, limit: int | None = None, progress: bool = True,
                warn=None) -> tuple[torch.Tensor, list[Path]]:
    """Read and preprocess the JPEG/PNG images of ``folder``: (N, C, H, W) and their paths.

    ``transform`` maps an RGB PIL image to a (C, H, W) tensor (a :class:`Source`'s). Files
    that cannot be decoded are skipped with one warning line each (``warn``, default: to
    stderr); a folder with none readable raises ``ValueError``. ``limit`` keeps the first
    ``limit`` files (sorted by path).
    """
    from tqdm.auto import tqdm
    warn = warn or (lambda msg: tqdm.write(f"warning: {msg}", file=sys.stderr))
    files = image_files(folder)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise ValueError(f"no JPEG/PNG image in {folder} (looked for {', '.join(IMAGE_SUFFIXES)})")
    out, kept = [], []
    for p in tqdm(files, unit="img", desc="reading", disable=not progress):
        try:
            image = open_image(p)
        except OSError as e:
            warn(f"skipping {e}")
            continue
        out.append(transform(image))
        kept.append(p)
    if not out:
        raise ValueError(f"none of the {len(files)} JPEG/PNG files in {folder} is readable")
    return torch.stack(out), kept
