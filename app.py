"""EditGAN Studio in the browser: ``python app.py [--model ID] [--device cpu|cuda|mps] [--share] [--port N]``."""
from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="EditGAN Studio: semantic image editing in the browser")
    parser.add_argument("--model", default=None,
                        help="embedded model name, Hub repo id (owner/name) or local folder (default: toy-faces)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public share link")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all interfaces)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from editgan.app import build_demo
    from editgan.engine.cpu_memory import keep_freed_memory

    keep_freed_memory()  # before Gradio starts its worker threads (see editgan/engine/cpu_memory.py)

    build_demo(model=args.model, device=args.device).launch(share=args.share, server_name=args.host,
                                                            server_port=args.port)


if __name__ == "__main__":
    main()
