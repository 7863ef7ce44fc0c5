"""The browser app (Gradio): ``build_demo()`` returns the Blocks; ``python app.py`` launches it."""
from editgan.app.demo import build_demo, launch_options

__all__ = ["build_demo", "launch_options"]
