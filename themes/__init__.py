"""flashtui's shipped themes (``*.toml``), installed as the package ``flashtui.themes``.

pyproject maps this folder to ``flashtui.themes`` so a normal install carries the files
inside the package; ``flashtui.tui.themes`` reads them with importlib.resources.
"""
