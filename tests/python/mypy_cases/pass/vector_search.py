"""The vector search takes a list of floats or a float32 array and returns rows with distances."""

import numpy as np

from rag_tenancy import ReadScope, ScopedSession, Viewer
from rag_tenancy.models import Chunk
from rag_tenancy.repositories import Chunks


def search(tx: ScopedSession[ReadScope[Viewer]]) -> list[tuple[Chunk, float]]:
    by_list = Chunks.nearest_by_embedding(tx, [0.0] * 384, limit=5)
    by_array = Chunks.nearest_by_embedding(tx, np.zeros(384, dtype=np.float32))
    return by_list + by_array
