"""One module per protocol: parsing and encoding; all call serving.dataplane.DataPlane."""
