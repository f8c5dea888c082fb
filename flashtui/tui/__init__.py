"""The Textual app: the only flashtui package that imports textual.

Import cost matters here (the first frame must come in well under a second), so
submodules are imported lazily and nothing in this package imports torch.
"""
