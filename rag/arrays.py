"""The numpy array types the stages pass to each other, named once."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]  # rows of embeddings (unit length where they are stored)
Floats = npt.NDArray[np.float64]  # scores and features
Ints = npt.NDArray[np.int64]  # row ids and character offsets
