"""``python -m zfbook occlude``: Fig. 7's maps for any model and image, checked against
direct forward passes of the occluded images through the original model."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from zfbook import sources
from zfbook.cli import main
from zfbook.data.embedded import embedded


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = tmp_path_factory.mktemp("occ")
    x = embedded("test").images[3].permute(1, 2, 0).numpy()
    Image.fromarray(x).save(d / "img.png")
    return d / "img.png"


def _direct(model, x, patch, rows, cols, target):
    """P(target) of every occluded image, one forward pass each (the reference)."""
    out = np.zeros((len(rows), len(cols)))
    with torch.no_grad():
        for i, t in enumerate(rows):
            for j, l in enumerate(cols):
                y = x.clone()
                y[:, t:t + patch, l:l + patch] = 0
                out[i, j] = torch.softmax(model(y[None])[0], 0)[target].item()
    return out


def test_occlude_zfnet_mini(image, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["occlude", "--model", "zfnet-mini", "--image", str(image), "--patch", "28",
                 "--stride", "28", "--target", "square", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "occluding" in err  # the sweep shows a progress bar (issue #15: every long loop)
    assert sorted(p.name for p in out.iterdir()) == ["activity.png", "maps.json", "overlay.png",
                                                     "p_target.png", "top_class.png"]
    rec = json.loads((out / "maps.json").read_text())
    src = sources.load_model("zfnet-mini")
    x = src.transform(sources.open_image(image))
    assert rec["target"] == src.classes.index("square") and rec["layer"] == "conv5"
    want = _direct(src.model, x, 28, rec["rows"], rec["cols"], rec["target"])
    np.testing.assert_allclose(rec["p_target"], want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, method", [("alexnet", "incremental"), ("resnet18", "batched")])
def test_occlude_torchvision_without_weights(name, method, image, tmp_path, capsys):
    out = tmp_path / name
    code = main(["occlude", "--model", f"torchvision:{name}", "--image", str(image), "--patch", "112",
                 "--stride", "56", "--method", method, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "occluding" not in err
    rec = json.loads((out / "maps.json").read_text())
    assert len(rec["rows"]) == 3 and rec["activity"] is not None
    import torchvision
    torch.manual_seed(0)   # the same untrained model, built directly (not the rebuilt chain)
    model = torchvision.models.get_model(name, weights=None).eval()
    x = sources.Normalize(256, 224)(sources.open_image(image))
    want = _direct(model, x, 112, rec["rows"], rec["cols"], rec["target"])
    np.testing.assert_allclose(rec["p_target"], want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("argv, says", [
    (["--target", "99"], "valid classes are 0-11"),
    (["--target", "unicorn"], "circle, square"),
    (["--patch", "500"], "valid patch sizes are 1"),
    (["--method", "fast"], "incremental, batched"),
    (["--layer", "conv9"], "conv1"),
])
def test_occlude_user_errors_are_one_line(argv, says, image, tmp_path, capsys):
    code = main(["occlude", "--model", "zfnet-mini", "--image", str(image), "--out", str(tmp_path / "o")] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0], err
    assert not (tmp_path / "o").exists()


def test_occlude_refuses_a_file_that_is_not_an_image(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"nope")
    assert main(["occlude", "--model", "zfnet-mini", "--image", str(tmp_path / "x.png"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not an image" in capsys.readouterr().err
