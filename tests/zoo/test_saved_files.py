"""`.keras` files saved by mobilenet-sep 0.1.0 before the package was split into sub-packages still load.

The fixtures were written by the flat 0.1.0 layout (`mobilenet_sep.layers`, `mobilenet_sep.pointcloud`): every
registered name (`mobilenet_sep>DepthwiseConv`, ...) must keep resolving, with the same outputs.
"""

from pathlib import Path

import numpy as np
import pytest

import mobilenet_sep

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name,inputs", [("layers_v0_1", "image"), ("cloud_v0_1", "cloud")])
def test_files_saved_before_the_move_load_with_the_same_outputs(name, inputs):
    stored = np.load(FIXTURES / "saved_v0_1_outputs.npz")
    model = mobilenet_sep.load_model(str(FIXTURES / f"{name}.keras"))
    outputs = np.asarray(model(stored[inputs], training=False))
    assert np.std(stored[f"{inputs}_out"]) > 0  # outputs that vary: equality means something
    np.testing.assert_allclose(outputs, stored[f"{inputs}_out"], rtol=1e-6, atol=1e-6)
