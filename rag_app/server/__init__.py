"""`jobrag serve`: the HTTP API a job board calls (FastAPI on uvicorn).

- `schemas`: request and response bodies (the records of rag_app.records, made public-safe) and the edge limits;
- `runtime`: the components built once per process (embedder, retrievers, LLM) and the generation gate;
- `openai_compat`: `/v1/chat/completions`, so OpenAI clients work unchanged;
- `app`: `create_app(settings)`, the routes, the edge (API key, body size, CORS, request ids, errors without traces);
- `bench`: `jobrag bench serve`, a bounded load generator.
"""
