"""The ONNX scoring bundle: what the slim scoring image serves (``/srv/model``).

:func:`export_onnx` turns a torch logit model into an ONNX graph (input ``features``, output
``logit``); :func:`export_bundle` writes the bundle folder (``champion.onnx``, optional
``challenger.onnx``, ``model.json``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn


def export_onnx(model: nn.Module, path: str | Path, n_features: int) -> Path:
    """Export a logit model to ONNX, dynamic batch axis (input ``features``, output ``logit``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, n_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.cpu().eval(),
            (example,),
            str(path),
            input_names=["features"],
            output_names=["logit"],
            dynamic_axes={"features": {0: "batch"}, "logit": {0: "batch"}},
            dynamo=False,
        )
    return path


def export_bundle(
    out_dir: str | Path,
    champion: nn.Module,
    features: list[str],
    threshold: float = 0.5,
    challenger: nn.Module | None = None,
    versions: dict[str, str] | None = None,
) -> Path:
    """Write what the ONNX scoring image serves: champion/challenger ``.onnx``, ``model.json``.

    Args:
        out_dir: the folder to mount at ``/srv/model``.
        champion: the model answering most traffic.
        features: the feature names in the models' input order.
        threshold: fraud probability at and above which the decision is ``block``.
        challenger: the model under A/B test, if any.
        versions: display names of the versions (e.g. registry versions), by arm.
    """
    from ml_common.atomic import atomic_dir, write_json

    versions = versions or {}
    with atomic_dir(out_dir) as tmp:
        export_onnx(champion, tmp / "champion.onnx", len(features))
        meta: dict[str, Any] = {
            "features": list(features),
            "threshold": threshold,
            "champion": versions.get("champion", "champion"),
        }
        if challenger is not None:
            export_onnx(challenger, tmp / "challenger.onnx", len(features))
            meta["challenger"] = versions.get("challenger", "challenger")
        write_json(tmp / "model.json", meta)
    return Path(out_dir)


def export_trained_nets(settings: Any, out: str | Path) -> Path:
    """Train two FraudNets on part 2's world (seeds s and s + 1) and export them as a bundle."""
    from level4_fraud.data.protocol import prepare_data
    from level4_fraud.models.fraudnet import train_torch_model

    s = settings.industrial
    splits = prepare_data(s)
    champion = train_torch_model(splits.X_train, splits.y_train, s.net_config())
    challenger = train_torch_model(splits.X_train, splits.y_train, s.net_config(seed=s.seed + 1))
    versions = {"champion": f"fraudnet-seed{s.seed}", "challenger": f"fraudnet-seed{s.seed + 1}"}
    return export_bundle(out, champion.cpu(), splits.features, 0.5, challenger.cpu(), versions)
