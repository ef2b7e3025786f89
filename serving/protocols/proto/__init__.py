"""Code generated from the vendored KServe V2 proto by ``make proto``: never edit it by hand."""
