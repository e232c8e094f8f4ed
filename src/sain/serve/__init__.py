"""``sain serve``: SAIN as an HTTP service and a web page (FastAPI on uvicorn; ``pip install sain[serve]``).

    upload ─limits (bytes, pixels: before decoding)─> temporary file ─bounded queue─> worker pool
    worker (its own model copies) ─encode_image / decode_image / roundtrip_image─> bytes / JSON

:mod:`sain.serve.limits` checks uploads, :mod:`sain.serve.pool` runs the model work,
:mod:`sain.serve.app` maps HTTP onto both; the page at ``/`` is ``static/``.
"""
