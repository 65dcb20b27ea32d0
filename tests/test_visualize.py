"""``python -m zfbook visualize`` and the model/image sources behind it (zfbook.sources)."""
import json
import re
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from zfbook import sources, topk
from zfbook.checkpoint import pretrained
from zfbook.cli import main
from zfbook.cli.visualize import parse_maps
from zfbook.data import resize_center
from zfbook.data.embedded import embedded


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six embedded test images as PNG/JPEG, one grayscale, one RGBA, one corrupt file."""
    d = tmp_path_factory.mktemp("imgs")
    data = embedded("test")
    for i in range(4):
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(d / f"a{i}.png")
    Image.fromarray(data.images[4].permute(1, 2, 0).numpy()).convert("L").save(d / "b_gray.jpg")
    Image.fromarray(data.images[5].permute(1, 2, 0).numpy()).convert("RGBA").save(d / "c_rgba.PNG")
    (d / "d_broken.jpg").write_bytes(b"\xff\xd8\xff this is not a jpeg")
    (d / "notes.txt").write_text("not an image")
    return d


def test_parse_maps():
    assert parse_maps("0-3") == [0, 1, 2, 3]
    assert parse_maps("5, 0-1,3") == [0, 1, 3, 5]
    assert parse_maps("all") is None and parse_maps("all", 3) == [0, 1, 2]
    for bad in ("", "a-b", "3-1", "-2", "1-"):
        with pytest.raises(ValueError, match="--maps"):
            parse_maps(bad)


def test_read_images_converts_and_skips(folder):
    src = sources.load_model("zfnet-mini")
    warnings = []
    images, paths = sources.read_images(folder, src.transform, progress=False, warn=warnings.append)
    assert [p.name for p in paths] == ["a0.png", "a1.png", "a2.png", "a3.png", "b_gray.jpg", "c_rgba.PNG"]
    assert images.shape == (6, 3, 112, 112)
    assert len(warnings) == 1 and "d_broken.jpg" in warnings[0] and "\n" not in warnings[0]
    # independent reference: the checkpoint's preprocessing applied by hand to the PNG's pixels
    model = pretrained("zfnet-mini")
    raw = torch.from_numpy(np.array(Image.open(folder / "a2.png"))).permute(2, 0, 1)
    want = model.preprocess.center(resize_center(128)(raw))[0]
    torch.testing.assert_close(images[2], want)
    gray = np.asarray(sources.open_image(folder / "b_gray.jpg"))
    assert gray.shape[2] == 3 and (gray[..., 0] == gray[..., 1]).all()


def test_rgba_is_composited_over_white(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[:4, :, :] = (255, 0, 0, 255)            # opaque red on top, transparent below
    Image.fromarray(a, "RGBA").save(tmp_path / "x.png")
    rgb = np.asarray(sources.open_image(tmp_path / "x.png"))
    assert (rgb[:4] == (255, 0, 0)).all() and (rgb[4:] == 255).all()


def test_read_images_refusals(tmp_path):
    t = sources.Normalize(8, 8)
    with pytest.raises(ValueError, match="no JPEG/PNG"):
        sources.read_images(tmp_path, t, progress=False)
    (tmp_path / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="none of the 1"):
        sources.read_images(tmp_path, t, progress=False, warn=lambda m: None)
    with pytest.raises(ValueError, match="not a folder"):
        sources.read_images(tmp_path / "x.jpg", t, progress=False)


def test_visualize_writes_grids_and_index(folder, tmp_path, capsys):
    out = tmp_path / "vis"
    code = main(["visualize", "--model", "zfnet-mini", "--images", str(folder), "--layers", "conv1,conv5",
                 "--maps", "0-1,20", "--k", "3", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("warning: skipping") == 1
    index = (out / "index.html").read_text()
    links = re.findall(r'href="([^"]+)"', index)
    assert links == ["conv1/maps_000-020.png", "conv5/maps_000-020.png"]
    for link in links:
        assert Image.open(out / link).size[0] > 200
    # the saved search is the plain search over the same preprocessed images
    src = sources.load_model("zfnet-mini")
    images, _ = sources.read_images(folder, src.transform, progress=False, warn=lambda m: None)
    want = topk.top_activations(src.model, images, ["conv1", "conv5"], 3, progress=False)
    got = topk.load(out / "topk.pt")
    for n in want:
        assert torch.equal(got[n].index, want[n].index) and torch.equal(got[n].value, want[n].value)
    assert json.loads((out / "images.json").read_text())[4] == "b_gray.jpg"
    # nothing is overwritten without --force
    assert main(["visualize", "--model", "zfnet-mini", "--images", str(folder), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_visualize_torchvision_without_weights(folder, tmp_path, capsys):
    out = tmp_path / "tv"
    code = main(["visualize", "--model", "torchvision:alexnet", "--images", str(folder), "--layers",
                 "features.1", "--maps", "0", "--k", "2", "--limit", "3", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (out / "features.1" / "maps_000-000.png").is_file()


@pytest.mark.parametrize("argv, says", [
    (["--model", "nope"], "valid models are: alexnet-mini, zfnet-mini"),
    (["--model", "torchvision:nope"], "valid names are:"),
    (["--model", "torchvision:alexnet", "--weights", "V9"], "valid weights are: DEFAULT"),
    (["--model", "zfnet-mini", "--weights", "DEFAULT"], "torchvision models only"),
    (["--model", "zfnet-mini", "--layers", "conv9"], "conv1, conv2"),
    (["--model", "zfnet-mini", "--maps", "0-40", "--layers", "conv1"], "conv1 has maps 0-31"),
    (["--model", "zfnet-mini", "--maps", "x"], "--maps takes"),
    (["--model", "zfnet-mini", "--k", "0"], "--k must be"),
    (["--model", "zfnet-mini", "--images", "embedded:nope"], "splits are"),
    (["--model", "torchvision:resnet18", "--layers", "layer1.0.conv1"], "BatchNorm2d"),
])
def test_visualize_user_errors_are_one_line(argv, says, folder, tmp_path, capsys):
    base = ["visualize", "--out", str(tmp_path / "o"), "--no-progress"]
    code = main(base + (["--images", str(folder)] if "--images" not in argv else []) + argv)
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if not e.startswith("warning: skipping")]  # the corrupt file, if read
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert not (tmp_path / "o").exists()


def test_offline_weights_fail_in_one_line(monkeypatch, tmp_path, capsys):
    import torchvision.models._api as api

    def offline(*a, **k):
        print("Downloading: ...")   # what torch.hub prints before it fails
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    code = main(["occlude", "--model", "torchvision:alexnet", "--weights", "DEFAULT", "--image",
                 str(tmp_path / "x.png"), "--out", str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert code == 2 and cap.out == ""
    assert cap.err.count("\n") == 1 and "cannot download" in cap.err and "offline" in cap.err
