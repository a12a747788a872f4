"""A found network written out for deployment: :mod:`~archsearch.export.formats` writes and checks ONNX,
``torch.export``, TorchScript and plain-Python forms; :mod:`~archsearch.export.standalone` writes the standalone
``model.py`` (the network's classes from :mod:`archsearch.nn` as source, the architecture as data)."""
