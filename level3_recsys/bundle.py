"""The serving bundle: what the batch job and the API load, with NumPy only (no training libs).

A model bundle is a folder written by :mod:`train`, logged to MLflow and registered; the service
and the batch job get it back **by alias** (``models:/level3-recsys@champion``) through
:func:`level3_recsys.train.export_serving_bundle`, which copies it to::

    serving/
      champion/    model.json  weights.npy  item_ids.npy  popularity.npy
      challenger/  (same files)
      users.npz    each user's training items, latest first (the live-scoring input)
      reference.json  training distributions of the monitored features (drift reference)
      store.sqlite the nightly batch's precomputed lists (sqlite backend)

Scores are ``x @ W`` where ``x`` weights a user's (or a session's) items by recency:
``0.5 ** (position_from_latest / half_life)``. A champion with a ``switch`` in its
``model.json`` (chosen on validation by :mod:`tune`) scores the activity groups named there
with another item x item matrix (``switch_<group>_<model>.npy``) and its own half-life; the
group of a history is its length (a known user's training positives, a session's items).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml_common.paths import level_dir

MODEL_FILES = ("model.json", "weights.npy", "item_ids.npy", "popularity.npy")


class BundleError(RuntimeError):
    """A serving bundle that is missing or incomplete; the message names the folder."""


def default_serving_dir() -> Path:
    """``artifacts/level3/serving``: where the batch exports the bundle and the service reads it."""
    return level_dir(3) / "serving"


def recency_weights(n: int, half_life: float) -> np.ndarray:
    """Weights of ``n`` items ordered latest first: ``0.5 ** (i / half_life)``."""
    return np.power(0.5, np.arange(n, dtype=np.float32) / np.float32(half_life))


@dataclass
class ItemScorer:
    """One recommender ready to serve: an item x item matrix and the catalogue around it."""

    name: str
    version: str
    alias: str
    half_life: float
    weights: np.ndarray  # (items, items) float32
    item_ids: np.ndarray  # column -> movieId
    popularity: np.ndarray  # training positives per column
    titles: dict[int, str] | None = None
    # activity group -> (weights, half-life) for the groups another model serves; edges of groups
    switch: dict[str, tuple[np.ndarray, float]] | None = None
    activity_edges: tuple[int, int] = (20, 50)

    def __post_init__(self) -> None:
        self._index = {int(item): i for i, item in enumerate(self.item_ids)}
        self.popular_order = np.argsort(-self.popularity, kind="stable")

    @classmethod
    def load(cls, folder: Path) -> ItemScorer:
        """Load a model folder; :class:`BundleError` if a file is missing."""
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise BundleError(f"{folder}: model bundle incomplete, missing {', '.join(missing)}")
        meta = json.loads((folder / "model.json").read_text())
        switch, edges = None, (20, 50)
        if meta.get("switch"):
            edges = tuple(meta["switch"]["activity_edges"])
            switch = {}
            for group, entry in meta["switch"]["groups"].items():
                path = folder / entry["weights"]
                if not path.is_file():
                    raise BundleError(f"{folder}: switch weights {entry['weights']} missing")
                weights = np.ascontiguousarray(np.load(path), dtype=np.float32)
                switch[group] = (weights, float(entry["half_life"]))
        return cls(
            switch=switch,
            activity_edges=edges,  # type: ignore[arg-type]
            name=meta["name"],
            version=str(meta.get("version", "unregistered")),
            alias=meta.get("alias", folder.name),
            half_life=float(meta["half_life"]),
            # Row-major whatever the file's order: scoring gathers rows (``W[history]``), and a
            # column-major matrix makes that ~20x slower (measured: 16 ms vs 0.75 ms, 858 rows).
            weights=np.ascontiguousarray(np.load(folder / "weights.npy"), dtype=np.float32),
            item_ids=np.load(folder / "item_ids.npy"),
            popularity=np.load(folder / "popularity.npy"),
            titles=_read_titles(folder / "items.json"),
        )

    def columns(self, item_ids: list[int]) -> np.ndarray:
        """Column indices of the known ``item_ids`` (unknown ones dropped, order kept)."""
        return np.array([self._index[i] for i in item_ids if i in self._index], dtype=np.int64)

    def score_items(self, history: np.ndarray, k: int) -> np.ndarray:
        """Top-``k`` columns for a history of columns ordered latest first, history excluded."""
        if len(history) == 0:
            return self.popular(k)
        matrix, half_life = self.weights, self.half_life
        if self.switch:
            group = ("light", "medium", "heavy")[
                int(np.searchsorted(self.activity_edges, len(history), side="right"))
            ]
            matrix, half_life = self.switch.get(group, (matrix, half_life))
        weights = recency_weights(len(history), half_life)
        scores = weights @ matrix[history]
        scores[history] = -np.inf
        k = min(k, len(scores) - len(history))
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")]

    def popular(self, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """The ``k`` most popular columns, skipping ``exclude``."""
        if exclude is None or len(exclude) == 0:
            return self.popular_order[:k]
        mask = ~np.isin(self.popular_order[: k + len(exclude)], exclude)
        return self.popular_order[: k + len(exclude)][mask][:k]

    def to_ids(self, columns: np.ndarray) -> list[int]:
        """MovieLens ids of columns."""
        return [int(i) for i in self.item_ids[columns]]


def _read_titles(path: Path) -> dict[int, str] | None:
    if not path.is_file():
        return None
    return {int(k): v for k, v in json.loads(path.read_text()).items()}


class UserHistories:
    """Each known user's training items (catalogue columns), latest first."""

    def __init__(self, user_ids: np.ndarray, indptr: np.ndarray, columns: np.ndarray) -> None:
        self.user_ids, self.indptr, self.columns_ = user_ids, indptr, columns
        self._row = {int(u): r for r, u in enumerate(user_ids)}

    @classmethod
    def load(cls, path: Path) -> UserHistories:
        if not path.is_file():
            raise BundleError(f"{path}: user histories missing from the serving bundle")
        data = np.load(path)
        return cls(data["user_ids"], data["indptr"], data["columns"])

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, user_ids=self.user_ids, indptr=self.indptr, columns=self.columns_)

    def __contains__(self, user_id: int) -> bool:
        return user_id in self._row

    def __len__(self) -> int:
        return len(self.user_ids)

    def get(self, user_id: int) -> np.ndarray | None:
        row = self._row.get(user_id)
        if row is None:
            return None
        return self.columns_[self.indptr[row] : self.indptr[row + 1]]
