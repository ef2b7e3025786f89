"""``make proto``: regenerate this package's KServe V2 gRPC code with grpcio-tools.

The protocol comes from the KServe SDK's wheel on PyPI (``kserve==KSERVE``): its generated
``kserve/protocol/grpc/grpc_predict_v2_pb2.py`` carries the compiled ``grpc_predict_v2.proto`` (every message and the
``inference.GRPCInferenceService``). protoc reads that descriptor (``--descriptor_set_in``) instead of a ``.proto``
file, so nothing of KServe's source tree is copied here. Two edits follow protoc: the stubs import the messages
package-relative (protoc writes a top-level ``import grpc_predict_v2_pb2``), and the messages live in a private
descriptor pool instead of protobuf's default one, because tritonclient.grpc and the kserve SDK register the same
``inference.*`` names there and a process that imports both would fail with "duplicate symbol" (kserve/kserve#3099).
Only the method paths (``/inference.GRPCInferenceService/...``) and field numbers go on the wire, so neither edit
changes the protocol.

    python -m serving.protocols.proto.regenerate
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
KSERVE = "0.21.0"
MEMBER = "kserve/protocol/grpc/grpc_predict_v2_pb2.py"
PROTO = "grpc_predict_v2.proto"


def kserve_descriptor(folder: Path) -> bytes:
    """The serialized FileDescriptorProto of KServe's V2 proto, from the kserve wheel (downloaded, not installed)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"kserve=={KSERVE}", "--no-deps", "--quiet", "-d", str(folder)],
        check=True,
    )
    wheel = next(folder.glob(f"kserve-{KSERVE}-*.whl"))
    source = zipfile.ZipFile(wheel).read(MEMBER).decode()
    module = {"__name__": "kserve_grpc_predict_v2_pb2"}  # built in a private pool, as our own code is
    exec(
        compile(source.replace("_descriptor_pool.Default()", "_descriptor_pool.DescriptorPool()"), MEMBER, "exec"),
        module,
    )
    return module["DESCRIPTOR"].serialized_pb


def main() -> int:
    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as d:
        descriptors = Path(d) / "kserve.pb"
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(
                file=[descriptor_pb2.FileDescriptorProto.FromString(kserve_descriptor(Path(d)))]
            ).SerializeToString()
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--descriptor_set_in={descriptors}",
                f"--python_out={HERE}",
                f"--pyi_out={HERE}",
                f"--grpc_python_out={HERE}",
                PROTO,
            ],
            check=True,
        )
    stubs, messages = HERE / "grpc_predict_v2_pb2_grpc.py", HERE / "grpc_predict_v2_pb2.py"
    _edit(stubs, "import grpc_predict_v2_pb2 as ", "from . import grpc_predict_v2_pb2 as ")
    _edit(messages, "DESCRIPTOR = _descriptor_pool.Default().", "DESCRIPTOR = _descriptor_pool.DescriptorPool().")
    print(f"regenerated {messages.name}, {stubs.name} and the .pyi from kserve=={KSERVE}'s {PROTO}")
    return 0


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(f"\n{old}") != 1:
        raise SystemExit(f"{path.name}: expected one line starting {old!r}; protoc's output has changed")
    path.write_text(text.replace(f"\n{old}", f"\n{new}"))


if __name__ == "__main__":
    sys.exit(main())
