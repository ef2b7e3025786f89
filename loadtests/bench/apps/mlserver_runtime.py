"""MLServer serving the model through a custom inference runtime, written as MLServer's docs show one: an
``MLModel`` subclass whose ``load`` opens the model and whose ``predict`` decodes the V2 request with MLServer's
``NumpyCodec``, runs the same onnxruntime session as every other server here (:mod:`.common`) and encodes the
answer with ``NumpyCodec``. MLServer does the rest: V2 REST and gRPC, adaptive batching (the batch arrives here
as one merged request), metrics. Started by :mod:`.mlserver_app`."""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from loadtests.bench.apps.common import session, v2_to_input


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        self.sess, self.input_name = session()
        self.output_name = self.sess.get_outputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        y = self.sess.run(None, {self.input_name: v2_to_input(x)})[0]
        return InferenceResponse(
            model_name=self.name, model_version=self.version, outputs=[NumpyCodec.encode_output(self.output_name, y)]
        )
