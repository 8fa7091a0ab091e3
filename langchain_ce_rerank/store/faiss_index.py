"""Building, training and tuning the FAISS index behind `FaissVectorStore`.

Every index maps FAISS's int64 ids to the store's documents. Flat and HNSW
indexes are wrapped in `IndexIDMap2`; IVF indexes keep the ids themselves with a
hash-table direct map, because `IndexIDMap2.remove_ids` on an IVF index
compacts its id table while the inverted lists keep their ids, which silently
mismatches documents after a delete.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from langchain_ce_rerank.store.topk import top_k


def is_ivf(spec: str) -> bool:
    """True when the factory string builds an inverted-file index."""
    return "IVF" in spec.upper()


def supports_removal(spec: str) -> bool:
    """FAISS cannot remove vectors from HNSW graphs; Flat and IVF can."""
    return "HNSW" not in spec.upper()


def build(spec: str, dimension: int, metric: int) -> Any:
    """A new, empty index for `spec` (a `faiss.index_factory` string).

    Raises:
        ValueError: FAISS rejects the string for this dimension.
    """
    try:
        if is_ivf(spec):
            index = faiss.index_factory(dimension, spec, metric)
            hashtable = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]
            faiss.extract_index_ivf(index).set_direct_map_type(hashtable)
            return index
        return faiss.index_factory(dimension, f"IDMap2,{spec}", metric)
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        msg = (
            f"FAISS cannot build index_factory={spec!r} for {dimension}-dimensional "
            f"vectors ({reason}); try 'Flat', 'HNSW32', 'IVF1024,SQ8' or "
            "'IVF1024,PQ32' (PQ needs a dimension divisible by its sub-quantizers)"
        )
        raise ValueError(msg) from err


def train(index: Any, vectors: npt.NDArray[np.float32], spec: str) -> None:
    """Train `index` on `vectors`, with an error that says how to fix a failure."""
    try:
        index.train(vectors)
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        msg = (
            f"training the {spec!r} index on {len(vectors)} vectors failed "
            f"({reason}); add more documents in the first call, or call "
            "store.train(sample_texts) with a representative sample first"
        )
        raise ValueError(msg) from err


def set_search_params(index: Any, nprobe: int | None, ef_search: int | None) -> None:
    """Apply the search knobs that this kind of index has."""
    space = faiss.ParameterSpace()
    if nprobe is not None:
        space.set_index_parameter(index, "nprobe", nprobe)
    if ef_search is not None:
        space.set_index_parameter(index, "efSearch", ef_search)


def stored_ids(index: Any) -> set[int]:
    """The int64 ids held by an index built by `build`."""
    top = faiss.downcast_index(index)
    id_map = getattr(top, "id_map", None)
    if id_map is not None:
        return set(faiss.vector_to_array(id_map).tolist())
    invlists: Any = faiss.extract_index_ivf(index).invlists
    ids: set[int] = set()
    for number in range(invlists.nlist):
        size = invlists.list_size(number)
        if size:
            ids.update(faiss.rev_swig_ptr(invlists.get_ids(number), size).tolist())
    return ids


# FAISS takes the BLAS path (all cores) only from this many queries up; below
# it, a flat search parallelizes over queries, so one query reads the whole
# index on one core. Its own default threshold is 20.
_FEW_QUERIES = 20


def flat_inner_product(index: Any) -> Any:
    """The flat inner-product index inside an `IDMap2`, else None."""
    top = faiss.downcast_index(index)
    if not isinstance(top, faiss.IndexIDMap2):
        return None
    # index_factory builds IndexFlat with the metric set; a loaded index
    # comes back as IndexFlatIP (a subclass). Both qualify.
    flat = faiss.downcast_index(top.index)
    if isinstance(flat, faiss.IndexFlat) and (
        flat.metric_type == faiss.METRIC_INNER_PRODUCT
    ):
        return flat
    return None


def search(
    index: Any, queries: npt.NDArray[np.float32], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """`index.search(queries, k)`, with all cores on a few inner-product queries.

    For an `IDMap2` over a flat inner-product index and fewer than 20 queries,
    the scores are one matrix-vector product through numpy's BLAS (threaded)
    over a zero-copy view of the stored vectors, then a partial sort: the same
    results FAISS gives (ties aside). For one query at 100k vectors on 2 cores
    it measured 7.9 ms against FAISS's 10.7 ms (benchmarks/README.md).
    Everything else goes to FAISS unchanged.
    Changing FAISS's global `distance_compute_blas_threshold` would do the same
    but would change it for every other FAISS user in the process.
    """
    flat = flat_inner_product(index)
    if flat is None or len(queries) >= _FEW_QUERIES or k > flat.ntotal:
        return index.search(queries, k)  # type: ignore[no-any-return]
    top: Any = faiss.downcast_index(index)
    total, dimension = int(flat.ntotal), int(flat.d)
    stored = faiss.rev_swig_ptr(flat.get_xb(), total * dimension).reshape(
        total, dimension
    )
    ids = faiss.rev_swig_ptr(top.id_map.data(), total)
    scores = queries @ stored.T  # (queries, total), all cores
    out_scores = np.empty((len(queries), k), dtype=np.float32)
    out_ids = np.empty((len(queries), k), dtype=np.int64)
    for row in range(len(queries)):
        positions = top_k(scores[row], k)
        out_scores[row] = scores[row, positions]
        out_ids[row] = ids[positions]
    return out_scores, out_ids
