"""The demo's web server: a FastAPI app serving one static page and a small JSON API.

FastAPI + uvicorn and a plain HTML/JS page rather than Gradio: four endpoints need no UI
framework, and the `demo` extra stays three small packages. Every refusal is JSON
`{"error": message}` (status 400) that the page shows; an unexpected failure is logged and
answered the same way (status 500), so the server keeps serving.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from importlib import resources
from typing import Any, Callable

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image

from vlbert.data.shards.schema import DataError
from vlbert.demo.service import MAX_UPLOAD_BYTES, DemoError, DemoService, decode_upload

logger = logging.getLogger(__name__)


def _page() -> str:
    return resources.files("vlbert.demo").joinpath("static/index.html").read_text(encoding="utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DemoError)
    @app.exception_handler(DataError)
    async def refused(_: Request, error: Exception) -> JSONResponse:
        return _error(400, str(error).splitlines()[0])

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = ", ".join(str(e.get("loc", ["?"])[-1]) for e in error.errors())
        return _error(400, f"the request lacks or garbles: {fields}")



def _image(upload: UploadFile) -> Image.Image:
    return decode_upload(upload.file.read(MAX_UPLOAD_BYTES + 1))


def create_app(service: DemoService) -> FastAPI:
    """The app for one loaded `DemoService`; requests run one at a time (the co-attention
    recording hooks the shared model)."""
    app = FastAPI(title="vlbert demo", docs_url=None, redoc_url=None)
    lock = threading.Lock()
    _add_error_handlers(app)

    def serve(call: Callable[[], dict[str, Any]]) -> dict[str, Any] | JSONResponse:
        """Run one model call; its refusals and failures become the page's JSON error."""
        with lock:
            try:
                return call()
            except (DemoError, DataError) as error:
                return _error(400, str(error).splitlines()[0])
            except Exception as error:  # noqa: BLE001 (the server keeps serving; the log keeps the trace)
                logger.error("demo request failed", exc_info=error)
                return _error(500, f"the model failed on this request ({type(error).__name__}); see the server log")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _page()

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return asdict(service.info())

    @app.get("/api/scene")
    def scene(seed: int | None = None) -> dict[str, Any]:
        return asdict(service.scene(seed))

    @app.post("/api/ask")
    def ask(image: UploadFile = File(...), question: str = Form(...), detector: str | None = Form(None),
            top: int = Form(5), method: str | None = Form(None)) -> Any:
        picture = _image(image)
        return serve(lambda: asdict(service.ask(picture, question, detector or None, max(1, min(top, 20)),
                                                method or None)))

    @app.post("/api/caption")
    def caption(image: UploadFile = File(...), detector: str | None = Form(None)) -> Any:
        picture = _image(image)
        return serve(lambda: {"caption": service.caption(picture, detector or None)})

    @app.post("/api/search")
    def search(caption: str = Form(...), top: int = Form(5)) -> Any:
        return serve(lambda: {"hits": [asdict(hit) for hit in service.search(caption, max(1, min(top, 16)))]})

    return app


def serve_demo(service: DemoService, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
