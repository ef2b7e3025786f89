"""The servers `modelyard bench` compares modelyard with, each written the way its docs recommend.

Every app serves the same ONNX file on the same route with the same session options and answers the same
TF Serving style body, ``{"instances": [{"ids": [...]}]}`` (text models) or ``{"instances": [[13 numbers]]}``
(Boston), so only the serving stack differs. Each is started as its own uvicorn/LitServe/BentoML process.
"""
