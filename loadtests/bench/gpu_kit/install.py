"""On the GPU machine: the kit's wheels into a site folder, a venv on this python that sees that folder first (its
``python`` is the one every step and every server the bench starts runs, and it reads the kit's .pth files, which
PYTHONPATH would not), the machine's nvidia-* CUDA libraries linked beside onnxruntime (where its preload looks),
wrk and k6 on PATH. Standard library only."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import ModelyardError


@dataclass
class Layout:
    state: Path
    """Where the parts, the unpacked kit (x) and bin live."""
    site: Path
    venv: Path

    @property
    def kit(self) -> Path:
        return self.state / "x"

    @property
    def bin(self) -> Path:
        return self.state / "bin"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def check_python(wanted: str) -> None:
    here = "%d.%d" % sys.version_info[:2]
    if here != wanted:
        raise ModelyardError(
            f"the kit holds wheels for Python {wanted} but this python is {platform.python_version()}"
            f" ({sys.executable}): build it with --python-version {here}"
        )


def install_wheels(wheels: list[Path], site: Path, use_pip: bool = True) -> None:
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    pip = use_pip and subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if pip:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--no-index",
                "--no-deps",
                "--target",
                str(site),
                *map(str, wheels),
            ]
        )
        if r.returncode:
            raise ModelyardError(f"pip install --target {site} failed")
    else:
        unzip_wheels(wheels, site)


def unzip_wheels(wheels: list[Path], site: Path) -> None:
    """Without pip: a wheel is a zip; its .data folders go where pip --target would put them."""
    for whl in wheels:
        with zipfile.ZipFile(whl) as z:
            z.extractall(site)
    for data in site.glob("*.data"):
        for part in data.iterdir():
            dst = site / "bin" if part.name == "scripts" else site
            dst.mkdir(exist_ok=True)
            for f in part.iterdir():
                shutil.move(str(f), dst / f.name)
        shutil.rmtree(data)
    for f in (site / "bin").glob("*") if (site / "bin").is_dir() else ():
        f.chmod(0o755)


def make_venv(venv: Path, manual: bool = False) -> Path:
    """A venv on this python without pip; by hand where the venv module cannot make one. Returns site-packages."""
    shutil.rmtree(venv, ignore_errors=True)
    base = Path(getattr(sys, "_base_executable", sys.executable))
    ver = "%d.%d" % sys.version_info[:2]
    made = (
        not manual
        and subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], capture_output=True).returncode == 0
    )
    if not made:
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(base)
        (venv / "bin" / "python3").symlink_to("python")
        (venv / "pyvenv.cfg").write_text(
            f"home = {base.parent}\ninclude-system-site-packages = false\nversion = {platform.python_version()}\n"
        )
    packages = venv / "lib" / f"python{ver}" / "site-packages"
    packages.mkdir(parents=True, exist_ok=True)
    return packages


def write_pth(packages: Path, site: Path, root: Path) -> None:
    """The kit's site first, then every folder this python sees (its site-packages, not the stdlib or the repo)."""
    std = os.path.realpath(sysconfig.get_paths()["stdlib"])
    skip = {str(site), str(root), os.getcwd()}
    dirs = [str(site)] + [
        p
        for p in sys.path
        if p
        and os.path.isdir(p)
        and p not in skip
        and os.path.realpath(p) not in (std, os.path.join(std, "lib-dynload"))
    ]
    (packages / "00-gpu-kit.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in dirs))


def link_cuda_libraries(site: Path) -> list[str]:
    """onnxruntime.preload_dlls() looks for the CUDA/cuDNN wheels beside onnxruntime: link the machine's there."""
    linked = []
    for p in sys.path:
        d = Path(p) / "nvidia"
        if p and os.path.realpath(p) != os.path.realpath(site) and d.is_dir():
            for child in sorted(d.iterdir()):
                dst = site / "nvidia" / child.name
                if child.name != "__pycache__" and not os.path.lexists(dst):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.symlink_to(child)
                    linked.append(f"{child.name} ({p})")
    return linked


def tools_on_path(kit: Path, bin_dir: Path) -> None:
    """wrk behind a wrapper that finds its libraries; k6 linked."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (kit / "wrk" / "wrk").chmod(0o755)
    (kit / "bin" / "k6").chmod(0o755)
    wrapper = bin_dir / "wrk"
    wrapper.write_text(
        f'#!/bin/sh\nLD_LIBRARY_PATH="{kit}/wrk/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" exec "{kit}/wrk/wrk" "$@"\n'
    )
    wrapper.chmod(0o755)
    k6 = bin_dir / "k6"
    k6.unlink(missing_ok=True)
    k6.symlink_to(kit / "bin" / "k6")


def install(layout: Layout, meta: dict, root: Path, use_pip: bool = True, manual_venv: bool = False, log=print) -> None:
    check_python(meta["python"])
    install_wheels(sorted((layout.kit / "wheels").glob("*.whl")), layout.site, use_pip)
    write_pth(make_venv(layout.venv, manual_venv), layout.site, root)
    linked = link_cuda_libraries(layout.site)
    log("nvidia-* libraries linked into the kit's site: " + (", ".join(linked) or "none found (no CUDA wheels here)"))
    tools_on_path(layout.kit, layout.bin)
    (layout.state / "installed").touch()
