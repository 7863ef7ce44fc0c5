"""EditGAN Studio in the browser: ``python app.py [--model ID] [--models A,B] [--public] [--share] [--device D]``.

On a Hugging Face Space (``SPACE_ID`` is set) and with ``--share`` the studio runs in public mode: visitors pick
only among the operator's models and no message names a server path.
"""
from __future__ import annotations

import argparse
import logging
import os

try:  # on a ZeroGPU Space `spaces` must be imported before torch is (it patches torch's CUDA for the main process)
    import spaces  # noqa: F401
except ImportError:  # anywhere else the studio runs without it
    pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="EditGAN Studio: semantic image editing in the browser")
    parser.add_argument("--model", default=os.environ.get("EDITGAN_MODEL") or None,
                        help="embedded model name, Hub repo id (owner/name) or local folder (default: $EDITGAN_MODEL, "
                             "else toy-faces)")
    parser.add_argument("--models", default=os.environ.get("EDITGAN_MODELS", ""),
                        help="more models to offer, comma-separated (in public mode, the only other ones allowed; "
                             "default: $EDITGAN_MODELS)")
    parser.add_argument("--public", action="store_true",
                        help="public mode: visitors choose only among --model and --models, never a path or Hub id")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public share link (public mode)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all interfaces)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from editgan.app import build_demo, launch_options
    from editgan.engine.cpu_memory import keep_freed_memory

    keep_freed_memory()  # before Gradio starts its worker threads (see editgan/engine/cpu_memory.py)
    public = args.public or args.share or bool(os.environ.get("SPACE_ID"))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    demo = build_demo(model=args.model, device=args.device, public=public, models=models)
    demo.launch(share=args.share, server_name=args.host, server_port=args.port, **launch_options())


if __name__ == "__main__":
    main()
