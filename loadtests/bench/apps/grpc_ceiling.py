"""The gRPC ceiling: a bare ``grpc.aio`` server that answers every KServe V2 ``ModelInfer`` call with one constant,
pre-serialized ``ModelInferResponse``, with no model and no decoding (the request arrives as bytes). No Python gRPC
server that does real work can beat it with the same load generator; it is to the gRPC rows what the HTTP
ceiling is to the REST ones. Listens on ``MODELYARD_BENCH_GRPC_PORT``."""

from __future__ import annotations

import asyncio
import os

import grpc

from serving.protocols.proto import grpc_predict_v2_pb2 as pb

SERVICE = "inference.GRPCInferenceService"
ANSWER = pb.ModelInferResponse(
    model_name=os.environ.get("MODELYARD_BENCH_MODEL", "model"),
    outputs=[pb.ModelInferResponse.InferOutputTensor(name="output", datatype="FP32", shape=[1, 1])],
    raw_output_contents=[b"\x00\x00\x00\x3f"],
).SerializeToString()


async def infer(request: bytes, context) -> bytes:
    return ANSWER


def server(port: int) -> grpc.aio.Server:
    s = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)})
    s.add_generic_rpc_handlers((handler,))
    s.add_insecure_port(f"127.0.0.1:{port}")
    return s


async def main() -> None:
    s = server(int(os.environ["MODELYARD_BENCH_GRPC_PORT"]))
    await s.start()
    await s.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
