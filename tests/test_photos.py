"""The appendix "On your own photos": scikit-image's photos without a download, whether
torchvision's weights are at hand (without waiting on the network), and the chapter's
online cells run end to end on a stand-in for AlexNet's ImageNet weights.

No test touches the network: the stand-in is a randomly initialised AlexNet saved where
torch.hub caches the real weights, and every HTTP request goes to a proxy that refuses.
"""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

from zfbook import photos, sources

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "photos.ipynb"
SKIPPED = "Skipped: needs the internet for AlexNet's weights (233 MB); runs on Colab."


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args[1:]}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch.hub cache, and the book's offline switch off."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(sources.OFFLINE_ENV, raising=False)
    return tmp_path / "torch"


# ------------------------------------------------------------------------- the photos
def test_photos_come_from_scikit_image_without_a_download(tmp_path, no_network):
    import skimage.data

    folder = photos.write_photos(tmp_path / "p")
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"{n}.png" for n in sorted(photos.PHOTOS)]
    for name in ("chelsea", "camera", "motorcycle"):
        saved = np.asarray(Image.open(folder / f"{name}.png"))
        want = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else \
            getattr(skimage.data, name)()
        assert np.array_equal(saved, want)   # PNG: the photo itself
    x, kept = sources.read_images(folder, sources.Normalize(256, 224), progress=False)
    assert x.shape == (len(photos.PHOTOS), 3, 224, 224) and len(kept) == len(photos.PHOTOS)
    camera = x[[p.stem for p in kept].index("camera")]   # a grey photo: three equal channels
    raw = camera * sources.Normalize(1, 1).std + sources.Normalize(1, 1).mean
    assert torch.allclose(raw[0], raw[1], atol=1e-6) and torch.allclose(raw[1], raw[2], atol=1e-6)


def test_write_photos_refuses_unknown_names_and_existing_files(tmp_path):
    with pytest.raises(ValueError, match="unknown photo 'lily'; photos are: astronaut, brick"):
        photos.write_photos(tmp_path, ["chelsea", "lily"])
    assert not (tmp_path / "chelsea.png").exists()       # nothing half done
    photos.write_photos(tmp_path, ["coffee"])
    with pytest.raises(FileExistsError, match="already holds coffee.png"):
        photos.write_photos(tmp_path, ["chelsea", "coffee"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coffee.png"]


# ---------------------------------------------------------- are the weights at hand?
def test_offline_switch_says_no_without_looking(torch_home, monkeypatch, no_network):
    monkeypatch.setenv(sources.OFFLINE_ENV, "1")
    _stand_in(torch_home)                   # even with the weights in the cache
    assert sources.pretrained_weights_available("alexnet") is False


def test_cached_weights_are_available_without_the_network(torch_home, no_network):
    assert sources.weights_file("alexnet") == \
        torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    _stand_in(torch_home)
    assert sources.pretrained_weights_available("alexnet") is True


@pytest.mark.parametrize("answer, want", [
    (urllib.error.URLError("[Errno -2] Name or service not known"), False),
    (urllib.error.HTTPError("u", 403, "Forbidden", {}, None), False),
    (200, True),
])
def test_without_a_cache_the_server_decides(torch_home, monkeypatch, answer, want):
    asked = []

    class Response:
        status = answer

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout):
        asked.append((request.get_method(), request.full_url, timeout))
        if isinstance(answer, Exception):
            raise answer
        return Response()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert sources.pretrained_weights_available("alexnet", timeout=2.5) is want
    assert asked == [("HEAD", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", 2.5)]


def test_a_network_that_hangs_costs_the_timeout_only(torch_home, monkeypatch):
    def hang(request, timeout):
        time.sleep(30)       # a name lookup no socket timeout bounds
    monkeypatch.setattr(urllib.request, "urlopen", hang)
    start = time.perf_counter()
    assert sources.pretrained_weights_available("alexnet", timeout=0.3) is False
    assert time.perf_counter() - start < 2


def test_unknown_models_and_weights_are_refused_even_offline(monkeypatch):
    monkeypatch.setenv(sources.OFFLINE_ENV, "1")
    with pytest.raises(ValueError, match="unknown torchvision classifier 'alexnot'; valid names"):
        sources.pretrained_weights_available("alexnot")
    with pytest.raises(ValueError, match="unknown weights 'V9' for torchvision:alexnet; valid "
                                         "weights are: DEFAULT, IMAGENET1K_V1"):
        sources.weights_skip_message("alexnet", "V9")


def test_skip_message_is_one_line_naming_the_download():
    assert sources.weights_skip_message("alexnet") == SKIPPED
    assert sources.weights_skip_message("vgg16").startswith(
        "Skipped: needs the internet for VGG16's weights (528 MB)")
    assert len(SKIPPED) <= 79       # a notebook's column


def test_a_download_waits_on_the_network_for_a_bounded_time(monkeypatch):
    import torchvision.models._api as api
    seen = []

    def load(url, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("offline")

    before = socket.getdefaulttimeout()
    monkeypatch.setattr(api, "load_state_dict_from_url", load)
    with pytest.raises(RuntimeError, match="cannot download"):
        sources.load_model("torchvision:alexnet", "DEFAULT")
    assert seen == [sources.DOWNLOAD_TIMEOUT] and socket.getdefaulttimeout() == before


# ------------------------------------------------------------------- the chapter
def _stand_in(torch_home: Path) -> Path:
    """A randomly initialised AlexNet (seed 1, float16 to halve the file) saved where
    torch.hub keeps the ImageNet weights: what the online cells load instead."""
    torch.manual_seed(1)
    import torchvision
    state = {k: v.half() for k, v in torchvision.models.alexnet().state_dict().items()}
    path = sources.weights_file("alexnet")
    assert path.is_relative_to(torch_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _online_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("if online:")]


def _texts(cell) -> str:
    out = []
    for o in cell.outputs:
        out.append(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", "")))
    return "".join(out)


def test_committed_chapter_skips_each_online_cell_in_one_line():
    nb = nbformat.read(CHAPTER, as_version=4)
    cells = _online_cells(nb)
    assert len(cells) >= 4
    for cell in cells:
        assert [o.output_type for o in cell.outputs] == ["stream"], cell.source[:80]
        assert cell.outputs[0].text == SKIPPED + "\n"
        assert "else:\n    print(skip)" in cell.source


@pytest.mark.slow
def test_online_cells_run_end_to_end_on_a_stand_in(torch_home, monkeypatch):
    """The whole chapter, in a kernel, as a reader online would run it, with a random
    AlexNet in the cache in place of the ImageNet weights: every online cell runs and shows
    its table or figure, no cell fails, nothing is downloaded."""
    from nbclient import NotebookClient

    _stand_in(torch_home)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")     # a request would fail at once
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(CHAPTER, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(CHAPTER.parent)}}).execute()
    cells = _online_cells(nb)
    assert len(cells) >= 4
    for cell in cells:
        kinds = {k for o in cell.outputs for k in o.get("data", {})}
        assert "Skipped" not in _texts(cell), cell.source[:80]
        assert kinds & {"image/png", "image/jpeg", "text/html"}, cell.source[:80]
        assert all(o.output_type != "error" for o in cell.outputs)
    answers = next(c for c in cells if "photos-answers" in json.dumps(c.outputs))
    assert "chelsea" in json.dumps(answers.outputs)
