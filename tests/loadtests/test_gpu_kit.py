"""The GPU kit's build and its device side, on tiny generated models and files: what it packs is verified by the
model repository, comes back whole through the parts a device call carries, and installs into a venv."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from loadtests.bench.gpu_kit import PART_LIMIT_MIB, build, contents, install, parts, wheels
from modelyard.errors import ModelyardError
from modelyard.manifest import DatasetInfo, Manifest, TabularPreprocessing, TensorSpec, VariantRecord
from modelyard.repository import ModelRepository

MiB = 1 << 20


def publish(repo: ModelRepository, name: str) -> int:
    """A version with an ONNX fp32 variant and one more artifact (random bytes: the kit never runs them)."""
    with repo.new_version(name) as stage:
        (stage.dir / "onnx").mkdir()
        (stage.dir / "onnx" / "fp32.onnx").write_bytes(os.urandom(30_000))
        (stage.dir / "model.keras").write_bytes(os.urandom(50_000))
        stage.manifest = Manifest(
            name=name,
            version=stage.version,
            task="regression",
            created_at="2026-01-01T00:00:00+00:00",
            inputs=[TensorSpec(name="features", dtype="float32", shape=[None, 2])],
            outputs=[TensorSpec(name="price", dtype="float32", shape=[None, 1])],
            preprocessing=TabularPreprocessing(feature_names=["A", "B"]),
            metrics={"mae": 2.5},
            dataset=DatasetInfo(name=name, source="generated", train_size=10, test_size=5),
            variants={"onnx_fp32": VariantRecord(format="onnx", path="onnx/fp32.onnx", metric="mae", value=2.5)},
        )
    return stage.version


@pytest.fixture
def kit(tmp_path: Path) -> tuple[build.BuildConfig, list[Path]]:
    """A kit of two models (one served), one data file and one wheel, cut into parts of 0.1 MiB."""
    repo = ModelRepository(tmp_path / "models")
    publish(repo, "served")
    publish(repo, "checked")
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.npz").write_bytes(os.urandom(120_000))
    cfg = build.BuildConfig(
        kit=tmp_path / "kit", repo=repo.root, data_dir=data, python="3.11", part_mib=0.1, served={"served"}
    )
    whl = tiny_wheel(tmp_path)
    entries = (
        contents.model_entries(cfg.repo, cfg.served, log=lambda _: None)
        + contents.dataset_entries(data, ["rows.npz"], log=lambda _: None)
        + [(whl, f"wheels/{whl.name}")]
    )
    return cfg, build.pack(cfg, entries, log=lambda _: None)


def tiny_wheel(folder: Path, requires: str = "") -> Path:
    """A pure-Python wheel of one module, ``kitprobe``, made by hand (METADATA, WHEEL, RECORD)."""
    whl = folder / "kitprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("kitprobe.py", "ANSWER = 42\n")
        z.writestr(
            "kitprobe-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: kitprobe\nVersion: 1.0\n{requires}"
        )
        z.writestr("kitprobe-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("kitprobe-1.0.dist-info/RECORD", "")
    return whl


def receive_all(kit_dir: Path, n: int, state: Path) -> tuple[dict, list[int]]:
    for k in range(1, n + 1):
        info, missing = parts.receive(kit_dir / str(k), k, n, state)
    return info, missing


def test_the_kit_comes_back_whole_and_its_served_models_verify(kit, tmp_path):
    cfg, folders = kit
    assert len(folders) >= 3 and [f.name for f in folders] == [str(k) for k in range(1, len(folders) + 1)]
    assert all(build.folder_bytes(f) <= cfg.part_mib * MiB for f in folders)
    info, missing = receive_all(cfg.kit, len(folders), tmp_path / "state")
    assert missing == []
    x = tmp_path / "state" / "x"
    meta = parts.unpack(info, tmp_path / "state", x)
    assert meta == {"python": "3.11", "served": ["served"]}
    served = ModelRepository(x / "models")
    assert served.verify("served", 1) == []  # every file of a served model: serving checks them all
    checked = x / "models/checked/1"  # the GPU check's model: its manifest and ONNX fp32 file
    assert sorted(p.relative_to(checked).as_posix() for p in checked.rglob("*") if p.is_file()) == [
        "manifest.json",
        "onnx/fp32.onnx",
    ]
    assert (x / "datasets/rows.npz").read_bytes() == (cfg.data_dir / "rows.npz").read_bytes()
    assert (x / "wheels/kitprobe-1.0-py3-none-any.whl").is_file()
    listed = (cfg.kit / "CONTENTS.txt").read_text()
    assert "models/served/1/model.keras" in listed and "models/checked/1/model.keras" not in listed


def test_a_part_and_the_working_tree_fit_in_one_device_call():
    default = build.BuildConfig(kit=Path(), repo=Path(), data_dir=Path()).part_mib
    for tree in (build.tree_bytes(), 3 * MiB, 20 * MiB):  # kit.json: 64 KiB at most
        assert build.part_bytes(default, tree) + 65536 + tree <= PART_LIMIT_MIB * MiB
    assert build.part_bytes(default, 20 * MiB) == (PART_LIMIT_MIB - 20 - 1) * MiB - 65536  # the tree's growth: 1 MiB
    assert build.part_bytes(default, 2 * MiB) == default * MiB - 65536
    assert build.part_bytes(0.1, 3 * MiB) == int(0.1 * MiB) - 65536
    with pytest.raises(ModelyardError, match="working tree .60.0 MiB. leaves no room"):
        build.part_bytes(default, 60 * MiB)


def test_a_model_that_fails_its_verification_stops_the_build(tmp_path):
    repo = ModelRepository(tmp_path / "models")
    publish(repo, "imdb")
    (repo.path("imdb", 1) / "model.keras").write_bytes(b"changed")
    with pytest.raises(ModelyardError, match="does not match its manifest: model.keras: sha256 mismatch"):
        contents.model_entries(repo.root, {"imdb"}, log=lambda _: None)


def test_a_damaged_part_or_a_missing_one_is_refused(kit, tmp_path):
    cfg, folders = kit
    n, state = len(folders), tmp_path / "state"
    with pytest.raises(ModelyardError, match="holds part 1 of"):
        parts.receive(folders[0], 1, n + 1, state)
    _, missing = parts.receive(folders[-1], n, n, state)
    assert missing == list(range(1, n))
    part = folders[1] / parts.PART_NAME.format(1)
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelyardError, match="sha256 differs from the kit's list"):
        parts.receive(folders[1], 2, n, state)


def test_the_wheels_install_into_a_venv_that_sees_them_first(tmp_path):
    site, venv = tmp_path / "site", tmp_path / "venv"
    install.install_wheels([tiny_wheel(tmp_path)], site, use_pip=False)
    install.write_pth(install.make_venv(venv, manual=True), site, Path.cwd())
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import kitprobe, sys; print(kitprobe.ANSWER, kitprobe.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["42", str(site / "kitprobe.py")]


def test_a_wheel_whose_requirement_is_neither_in_the_kit_nor_on_the_machine_is_named(tmp_path):
    whl = tiny_wheel(
        tmp_path,
        "Requires-Dist: numpy>=2\nRequires-Dist: leftpad; python_version < '3.13'\n"
        "Requires-Dist: colorama; sys_platform == 'win32'\n",
    )
    assert wheels.missing_requirements([whl], "3.12", ["numpy"]) == ['kitprobe needs leftpad; python_version < "3.13"']
    assert wheels.missing_requirements([whl], "3.13", ["numpy"]) == []


def test_a_kit_for_another_python_is_refused_with_the_flag_to_build_the_right_one():
    other = "3.%d" % (sys.version_info[1] + 1)
    with pytest.raises(ModelyardError, match=f"wheels for Python {other} .* --python-version 3.{sys.version_info[1]}"):
        install.check_python(other)


def test_the_command_reports_a_missing_part_folder_in_one_line(tmp_path, capsys):
    from loadtests.bench.gpu_kit.__main__ import main

    assert main(["device", "--kit", str(tmp_path), "1", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu_kit: ") and "kit.json is missing: carry" in err and "Traceback" not in err
    assert main(["build", "--python-version", "3", "--kit", str(tmp_path)]) == 2
    assert "--python-version 3: give major.minor" in capsys.readouterr().err
