"""The level's layout is its stages: light settings, no import cycle, README table = tree."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from level4_fraud.config import DEFAULT_CONFIG, Level4Settings, load_config

PACKAGE = Path(__file__).resolve().parents[2] / "level4_fraud"
STAGES = ("data", "models", "training", "lifecycle", "serving", "experiments")


def test_settings_load_without_torch() -> None:
    code = (
        "import sys, level4_fraud.config as c; c.load_config();"
        "heavy = [m for m in ('torch', 'lightgbm', 'sklearn', 'mlflow') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_defaults_are_the_yaml(monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("LEVEL4_"):
            monkeypatch.delenv(name)
    assert Level4Settings().model_dump() == load_config(DEFAULT_CONFIG).model_dump()
    assert not (PACKAGE / "industrial.yaml").exists()  # one settings file


def _imports(path: Path) -> set[str]:
    """Every level4_fraud module ``path`` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("level4"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("level4_fraud")}
    return found


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def test_no_import_cycle() -> None:
    modules = _modules()
    graph = {name: sorted(_imports(path) & set(modules) - {name}) for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for child in graph[name]:
            if state.get(child) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, name, child]))
            if child not in state:
                visit(child, [*stack, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    # The import graph is not vacuous: training reaches the models and the data.
    assert "level4_fraud.models.fraudnet" in graph["level4_fraud.training.train"]


def test_readme_stage_table_is_the_folder_tree() -> None:
    readme = (PACKAGE / "README.md").read_text()
    table = re.findall(r"^\| (\w+) \| `(\w+)/` \|", readme, flags=re.M)
    assert [folder for _, folder in table] == list(STAGES)
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(STAGES)
    for stage in STAGES:  # each row names every module of its folder
        row = next(line for line in readme.splitlines() if line.startswith(f"| {stage} | `"))
        for module in (PACKAGE / stage).glob("*.py"):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in row, f"README's {stage} row misses {module.name}"


def _training_loops(tree: ast.AST) -> list[int]:
    """Lines that run a training step: a ``.backward(...)`` call, or ``.step()`` on a name bound
    to a ``torch.optim`` optimizer (a loop whose backward is hidden in a library, as the
    pipeline schedule's, still steps its optimizer)."""
    optimizers = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and "optim" in ast.unparse(node.value.func)
        for target in node.targets if isinstance(target, ast.Name)
    }  # fmt: skip
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and (node.func.attr == "backward"
             or (node.func.attr == "step" and ast.unparse(node.func.value) in optimizers))
    ]  # fmt: skip


#: The training loops of the level and why each exists: FraudNet's one ``fit`` (every model
#: trained as a FraudNet goes through it), and pipeline parallelism, whose GPipe schedule runs
#: forward and backward per micro-batch across processes and cannot call ``fit`` (its loss curve
#: is compared with fit's: tests/level4/test_pipeline.py).
TRAINING_LOOPS = {"models/fraudnet.py", "training/pipeline.py"}


def test_training_loops_are_the_known_ones() -> None:
    loops = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _training_loops(ast.parse(path.read_text()))
    }
    assert loops == TRAINING_LOOPS


def test_the_loop_finder_sees_a_loop_without_backward() -> None:
    hidden = (
        "opt = torch.optim.SGD(params)\n"
        "for batch in data:\n    schedule.step(batch)\n    opt.step()\n"
    )
    assert _training_loops(ast.parse(hidden)) == [4]
    assert _training_loops(ast.parse("loss = f(x)\n(loss / 2).backward()\n")) == [2]
    assert _training_loops(ast.parse("scheduler.step()\nenv.step(action)\n")) == []


def test_scoring_image_files_are_enough_to_import_the_onnx_tier(tmp_path: Path) -> None:
    """The slim image copies a few files only; they must import without the rest of the level."""
    dockerfile = (PACKAGE.parent / "docker" / "fraud.Dockerfile").read_text()
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith(("COPY level4_fraud/", "COPY ml_common/"))
        for source in line.split()[1:-1]
        if source.endswith(".py")
    ]
    assert "level4_fraud/serving/onnx_service.py" in copied
    for source in copied:
        target = tmp_path / source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((PACKAGE.parent / source).read_text())
    # The project is installed editable here, and its import hook would find any file the image
    # lacks: -S skips the .pth files that install it; site-packages is put back as a plain path.
    paths = sysconfig.get_paths()
    libraries = os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    code = "import level4_fraud.serving.onnx_service"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), libraries])}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
