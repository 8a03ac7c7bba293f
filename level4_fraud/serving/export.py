"""The ONNX scoring bundle: what the slim scoring image serves (``/srv/model``).

One lineage from evaluation to deployment: :func:`export_from_registry` reads the ensemble that
the registry's alias points at (``models:/level4-fraud@champion``), compiles its **scoring path**
(every member with a weight, and the weights) into ONE ONNX graph (input ``features``, output
``score``, the ensemble's fraud score), checks on a fixed batch that onnxruntime's scores equal the
registered ensemble's to ``1e-5``, and writes the bundle with the registered model's name,
version and run id both in ``model.json`` and inside the ONNX file (its metadata), so the service
can report what it serves at ``/model``, in every response and in its metric labels.

:func:`export_onnx` turns a torch logit model into an ONNX graph (output ``logit``);
:func:`export_bundle` writes a bundle of such nets (part 2's experiments and the image test).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from level4_fraud.config import Level4Settings
from level4_fraud.data.features import FEATURES
from level4_fraud.models.ensemble import FraudEnsemble

ONNX_OPSET = 15  # the highest onnxmltools' LightGBM converter supports; the net is exported to it
SERVABLE_MEMBERS = ("fraudnet", "lightgbm")
CHECK_ROWS = 4096
CHECK_TOLERANCE = 1e-5


def export_onnx(
    model: nn.Module, path: str | Path | io.BytesIO, n_features: int, opset: int | None = None
) -> Path | io.BytesIO:
    """Export a logit model to ONNX, dynamic batch axis (input ``features``, output ``logit``)."""
    if not isinstance(path, io.BytesIO):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, n_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.cpu().eval(),
            (example,),
            path if isinstance(path, io.BytesIO) else str(path),
            input_names=["features"],
            output_names=["logit"],
            dynamic_axes={"features": {0: "batch"}, "logit": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return path


def _member_graph(name: str, member: Any, n_features: int) -> Any:
    """One member as an ONNX model whose output ``<name>_p`` is its fraud probability."""
    import onnx
    from onnx import helper

    if name == "fraudnet":
        buffer = export_onnx(member, io.BytesIO(), n_features, opset=ONNX_OPSET)
        model = onnx.load_from_string(buffer.getvalue())
        model.graph.node.append(helper.make_node("Sigmoid", ["logit"], ["p"]))
    elif name == "lightgbm":
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_lightgbm(
                member,
                initial_types=[("features", FloatTensorType([None, n_features]))],
                zipmap=False,
                target_opset=ONNX_OPSET,
            )
        one = helper.make_tensor("positive_class", onnx.TensorProto.INT64, [], [1])
        model.graph.initializer.append(one)
        model.graph.node.append(
            helper.make_node("Gather", ["probabilities", "positive_class"], ["p"], axis=1)
        )
    else:
        raise ValueError(f"no ONNX scoring path for ensemble member {name!r}")
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("p", onnx.TensorProto.FLOAT, None))
    return onnx.compose.add_prefix(model, f"{name}_")


def ensemble_graph(ensemble: FraudEnsemble, n_features: int, lineage: dict[str, str]) -> Any:
    """The ensemble's scoring path as ONE ONNX model: ``features`` → ``score``.

    Members with weight 0 are not part of the scoring path (the isolation forest serves the
    drift monitor only); a member with a weight but no ONNX converter is refused with a clear
    error rather than served differently from what was evaluated.
    """
    import onnx
    from onnx import TensorProto, helper

    active = {n: float(w) for n, w in ensemble.weights.items() if w > 0 and n in ensemble.members}
    unsupported = sorted(set(active) - set(SERVABLE_MEMBERS))
    if unsupported:
        raise ValueError(
            f"the ensemble weights {unsupported}, which has no ONNX scoring path here "
            f"(servable: {list(SERVABLE_MEMBERS)}); serve it with `python -m level4_fraud serve`"
        )
    if not active:
        raise ValueError("the ensemble has no member with a positive weight")
    total = sum(active.values())
    nodes, initializers, opsets = [], [], {"": ONNX_OPSET}
    terms = []
    for name, weight in active.items():
        member = _member_graph(name, ensemble.members[name], n_features)
        nodes.append(helper.make_node("Identity", ["features"], [f"{name}_features"]))
        nodes.extend(member.graph.node)
        initializers.extend(member.graph.initializer)
        for opset in member.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        initializers.append(
            helper.make_tensor(f"{name}_w", TensorProto.FLOAT, [], [weight / total])
        )
        nodes.append(helper.make_node("Mul", [f"{name}_p", f"{name}_w"], [f"{name}_term"]))
        terms.append(f"{name}_term")
    nodes.append(helper.make_node("Sum", terms, ["score"]))
    graph = helper.make_graph(
        nodes,
        "level4_fraud_ensemble",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
    model.ir_version = 8
    for key, value in lineage.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(model)
    return model


def check_batch(ensemble: FraudEnsemble, rows: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """A fixed batch of plausible feature rows, drawn from the champion's own training scaler.

    FraudNet keeps its training data's feature means and standard deviations; rows are drawn
    around them (non-negative, as every feature is), so the check covers the range the model was
    trained on without needing the data itself.
    """
    net = ensemble.members["fraudnet"]
    mean, std = net.mean.numpy(), net.std.numpy()
    rng = np.random.default_rng(seed)
    rows_ = np.abs(mean + std * rng.standard_normal((rows, len(mean))))
    return rows_.astype(np.float32)


def onnx_scores(model_bytes: bytes, X: np.ndarray) -> np.ndarray:
    """Scores of an ensemble ONNX model under onnxruntime (CPU, one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(["score"], {"features": X})[0]


def registered_lineage(settings: Level4Settings, alias: str) -> dict[str, str]:
    """``registered_model``, ``version``, ``run_id``, ``alias``, ``uri`` of the alias's version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ml_common.tracking import setup_mlflow

    setup_mlflow(settings.experiment)
    try:
        version = MlflowClient().get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as exc:
        raise FileNotFoundError(
            f"no '{alias}' alias on model {settings.model_name}: "
            "run `python -m level4_fraud train` first"
        ) from exc
    return {
        "registered_model": settings.model_name,
        "version": str(version.version),
        "run_id": str(version.run_id),
        "alias": alias,
        "uri": f"models:/{settings.model_name}/{version.version}",
    }


def export_from_registry(
    settings: Level4Settings, out_dir: str | Path, alias: str = "champion"
) -> dict[str, Any]:
    """Export the ensemble registered under ``alias`` as the ONNX bundle in ``out_dir``.

    The version is resolved once and loaded by number (``models:/name/<version>``), so an alias
    moving during the export cannot mix two versions. Raises ``ValueError`` (and writes nothing)
    when onnxruntime's scores differ from the registered ensemble's by more than ``1e-5``.

    Returns:
        The bundle's ``model.json`` content.
    """
    import mlflow

    from ml_common.atomic import atomic_dir, write_json

    lineage = registered_lineage(settings, alias)
    wrapper = mlflow.pyfunc.load_model(lineage["uri"])
    ensemble: FraudEnsemble = wrapper.unwrap_python_model().ensemble
    model = ensemble_graph(ensemble, len(FEATURES), lineage)
    data = model.SerializeToString()
    X = check_batch(ensemble)
    expected = ensemble.predict_proba(X)
    got = onnx_scores(data, X)
    max_diff = float(np.abs(got.astype(np.float64) - expected).max())
    if not max_diff <= CHECK_TOLERANCE:
        raise ValueError(
            f"ONNX scores differ from the registered version {lineage['version']} by "
            f"{max_diff:.2e} (> {CHECK_TOLERANCE:g}): bundle not written"
        )
    meta = {
        "format": 2,
        "features": list(FEATURES),
        "threshold": settings.serve.decision_threshold,
        "output": "score",
        "champion": {
            **lineage,
            "weights": {n: float(w) for n, w in ensemble.weights.items()},
            "check": {"rows": len(X), "max_abs_diff": max_diff, "tolerance": CHECK_TOLERANCE},
        },
    }
    with atomic_dir(out_dir) as tmp:
        (tmp / "champion.onnx").write_bytes(data)
        write_json(tmp / "model.json", meta)
    return meta


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
