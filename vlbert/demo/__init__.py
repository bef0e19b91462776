"""`vlbert demo`: a local web page over saved models (needs the `demo` extra for the server).

`service` holds what the page can ask (importable without the web packages), `heatmap` draws
where a question looked, `gallery` encodes the retrieval gallery once, `app` is the FastAPI app.
"""
