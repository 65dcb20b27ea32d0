"""The deconvnet as a modified gradient: :func:`gradient` with autograd, and :func:`pass_norm`."""
from __future__ import annotations

import copy as _copy

import torch
from torch import nn

from ..checks import finite_images
from .links import _module_name, chain
from .projection import _seeds


# ------------------------------------------------------------------ as a modified gradient
class _RectifiedGradient(torch.autograd.Function):
    """ReLU forward; backward = ReLU of the incoming gradient (the deconvnet's rectification)."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _DeconvReLU(nn.Module):
    def forward(self, x):
        return _RectifiedGradient.apply(x)


class _PassNorm(nn.Module):
    """Contrast normalisation forward, identity backward."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        return x + (self.norm(x) - x).detach()


def pass_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose contrast normalisation (``nn.LocalResponseNorm``) computes the
    same forward but passes the gradient through unchanged, as the deconvnet does on the way
    down (Section 2.1). Attribution libraries run on this copy compute the deconvnet's own
    projection (e.g. Captum's ``NeuronDeconvolution``)."""
    return _swap(_copy.deepcopy(model), nn.LocalResponseNorm, _PassNorm)


def _swap(net: nn.Module, kind: type, make) -> nn.Module:
    """Replace, in place, every ``kind`` submodule ``m`` of ``net`` by ``make(m)``."""
    for mname, m in list(net.named_modules()):
        if isinstance(m, kind):
            parent, _, child = mname.rpartition(".")
            setattr(net.get_submodule(parent), child, make(m))
    return net


def gradient(model: nn.Module, images: torch.Tensor, layer: str, feature, location=None, *,
             norm: str = "pass") -> torch.Tensor:
    """The same projection computed by autograd: a *modified backward pass* (Section 2.1).

    The gradient of the chosen activation with respect to the input, with ReLU's backward
    replaced by ReLU of the incoming gradient, and the backward pass seeded with the
    activation's value instead of 1 (for a non-negative activation, that is the value times
    the gradient; a negative seed flips what the rectifications keep). With
    ``norm="pass"`` contrast normalisation is passed through unchanged on the way down, as
    in the deconvnet, and the result equals :func:`project`; ``norm="backprop"``
    differentiates it, which is what attribution libraries ("Deconvolution") compute.
    ``feature``: an int or N ints; ``location``: ``None``, a (y, x) pair or N pairs.
    One backward pass per image: a reference, not the fast path.
    """
    if norm not in ("pass", "backprop"):
        raise ValueError(f"unknown norm {norm!r}; valid norms are: pass, backprop")
    finite_images("images", images)
    name = _module_name(model, layer)
    chain(model, layer)  # refuse the same models project() refuses
    img, feat, loc, _ = _seeds(images.shape[0], feature, location, None)
    net = _swap(pass_norm(model) if norm == "pass" else _copy.deepcopy(model), nn.ReLU,
                lambda _: _DeconvReLU()).eval()
    target = net.get_submodule(name)
    seen = []

    class _Stop(Exception):
        pass

    def hook(_m, _i, out):
        seen.append(out)
        raise _Stop

    handle = target.register_forward_hook(hook)
    out = torch.empty_like(images)
    try:
        for s in range(images.shape[0]):
            x = images[s:s + 1].detach().clone().requires_grad_(True)
            seen.clear()
            try:
                net(x)
            except _Stop:
                pass
            act = seen[0][0, feat[s]]
            if act.dim() == 0:
                if loc is not None:
                    raise ValueError(f"layer {layer!r} is fully connected: pass location=None")
                a = act
            elif loc is None:
                a = act.flatten()[act.flatten().argmax()]
            else:
                a = act[loc[s, 0], loc[s, 1]]
            # seeded with the activation's value, as the deconvnet is
            (g,) = torch.autograd.grad(a, x, grad_outputs=a.detach())
            out[s] = g[0]
    finally:
        handle.remove()
    return out
