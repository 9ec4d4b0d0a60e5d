"""Tests of the prediction picture (mosflm_py.output.picture)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mosflm_py.output.picture import (
    BEAM_COLOUR,
    PREDICTION_COLOURS,
    SPOT_COLOUR,
    PredictionClass,
    contrast_limits,
    picture_scale,
    render_picture,
    to_picture_xy,
    write_picture,
)


def synthetic_frame(shape=(1000, 900), seed=0):
    rng = np.random.default_rng(seed)
    frame = rng.poisson(10.0, size=shape).astype(np.float32)
    frame[400:410, :] = -1  # module gap
    return frame


def colours_near(rgb, xy, radius):
    x, y = int(np.floor(xy[0])), int(np.floor(xy[1]))
    block = rgb[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
    return {tuple(int(c) for c in p) for p in block.reshape(-1, 3)}


def test_scale_and_coordinates():
    assert picture_scale((2527, 2463), 1600) == 2
    assert picture_scale((1000, 900), 1600) == 1
    assert picture_scale((4371, 4150), 1600) == 3
    np.testing.assert_allclose(to_picture_xy(np.array([[100.0, 50.0]]), 2), [[25.0, 50.0]])


def test_contrast_limits_ignore_gaps():
    frame = synthetic_frame()
    lo, hi = contrast_limits(frame)
    assert lo == pytest.approx(10.0, abs=1.0)  # Poisson(10) median
    assert 15 < hi < 25


def test_picture_size_colours_and_file(tmp_path):
    frame = synthetic_frame((1600, 1200))
    preds = np.array([[250.5, 300.5], [750.5, 350.5], [1000.5, 900.5], [1300.5, 150.5]])
    classes = np.array([0, 1, 2, 3])
    spots = np.array([[500.5, 600.5]])
    beam = (800.0, 600.0)
    image = render_picture(frame, spots_px=spots, predictions_px=preds, prediction_class=classes,
                           beam_px=beam, ring_radii_px=[300.0], ring_labels=["3.00 Å"],
                           max_size=800, title="test")  # fmt: skip
    assert image.size == (600, 800)  # scale 2: (fast, slow) / 2
    path = tmp_path / "pic.png"
    assert write_picture(path, image) == (600, 800)
    back = np.asarray(Image.open(path).convert("RGB"))
    assert back.shape == (800, 600, 3)
    xy = to_picture_xy(preds, 2)
    for k, code in enumerate(PredictionClass):
        assert PREDICTION_COLOURS[code] in colours_near(back, xy[k], 4), code.name
        # box outline: the centre pixel itself stays grey (the spot remains visible)
        cx, cy = int(xy[k][0]), int(xy[k][1])
        assert len(set(back[cy, cx].tolist())) == 1
    assert SPOT_COLOUR in colours_near(back, to_picture_xy(spots, 2)[0], 3)
    assert BEAM_COLOUR in colours_near(back, to_picture_xy(np.array([beam]), 2)[0], 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pic.png"]


def test_inverted_grey_dark_spot_on_white():
    frame = np.full((200, 300), 10.0, dtype=np.float32)
    frame[100:103, 150:153] = 5000.0
    rgb = np.asarray(render_picture(frame))
    assert rgb.shape == (200, 300, 3)
    assert rgb[101, 151].tolist() == [0, 0, 0]  # strong spot black
    assert rgb[50, 250].tolist() == [255, 255, 255]  # background white


def test_bad_inputs():
    with pytest.raises(ValueError, match="2-D"):
        render_picture(np.zeros(10))
    with pytest.raises(ValueError, match="class"):
        render_picture(np.zeros((50, 50)), predictions_px=np.zeros((3, 2)),
                       prediction_class=np.zeros(2))  # fmt: skip


@pytest.mark.realdata
def test_real_pilatus6m_picture(real_data, tmp_path):
    fabio = pytest.importorskip("fabio")
    frame = fabio.open(str(real_data / "pilatus6m_p3_and_thaumatin" / "example_009.cbf.gz")).data
    image = render_picture(frame, beam_px=(1324.6, 1266.7), ring_radii_px=[500.0],
                           ring_labels=["3.56 Å"])  # fmt: skip
    assert image.size == (1232, 1264)  # 2463 x 2527 pixels reduced by 2
    assert write_picture(tmp_path / "p.png", image) == (1232, 1264)
    rgb = np.asarray(image)
    grey = rgb[rgb.min(axis=2) == rgb.max(axis=2)][:, 0]
    assert np.median(grey) > 100  # mostly light background, dark spots
