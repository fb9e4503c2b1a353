"""Provider adapters: turn an OpenAI-style chat request into a provider call and back.

The gateway speaks the OpenAI chat-completions shape on both sides; each adapter
builds the provider's HTTP request and converts its answer (whole or streamed)
into OpenAI ``chat.completion`` / ``chat.completion.chunk`` dictionaries.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import httpx

from mloop.gateway._config import Deployment

__all__ = ["Adapter", "AnthropicAdapter", "OpenAIAdapter", "adapter_for"]

_ANTHROPIC_VERSION = "2023-06-01"
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class Adapter(Protocol):
    """How one provider family is called."""

    def build(self, dep: Deployment, body: Mapping[str, Any], api_key: str | None) -> httpx.Request:
        """The HTTP request for an OpenAI-style ``body`` (messages already templated)."""
        ...

    def parse(self, dep: Deployment, data: Mapping[str, Any]) -> dict[str, Any]:
        """An OpenAI ``chat.completion`` from the provider's JSON answer."""
        ...

    def chunks(self, dep: Deployment, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        """OpenAI ``chat.completion.chunk`` dicts from a streaming answer."""
        ...


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            yield line[5:].strip()


class OpenAIAdapter:
    """Any OpenAI-compatible endpoint (OpenAI, Azure-style proxies, vLLM, Ollama…)."""

    def build(self, dep: Deployment, body: Mapping[str, Any], api_key: str | None) -> httpx.Request:
        headers = {"content-type": "application/json", **dep.headers}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        payload = {**body, "model": dep.model}
        return httpx.Request(
            "POST", f"{dep.base_url}/chat/completions", headers=headers, json=payload
        )

    def parse(self, dep: Deployment, data: Mapping[str, Any]) -> dict[str, Any]:
        return dict(data)

    async def chunks(
        self, dep: Deployment, response: httpx.Response
    ) -> AsyncIterator[dict[str, Any]]:
        async for data in _sse_data(response):
            if data == "[DONE]":
                return
            if data:
                yield json.loads(data)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


class AnthropicAdapter:
    """Anthropic's messages API (``base_url`` like ``https://api.anthropic.com/v1``)."""

    default_max_tokens = 1024

    def build(self, dep: Deployment, body: Mapping[str, Any], api_key: str | None) -> httpx.Request:
        system = "\n\n".join(
            _text(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system"
        )
        messages = [
            {"role": m["role"], "content": _text(m.get("content"))}
            for m in body.get("messages", [])
            if m.get("role") in ("user", "assistant")
        ]
        payload: dict[str, Any] = {
            "model": dep.model,
            "messages": messages,
            "max_tokens": body.get("max_tokens")
            or body.get("max_completion_tokens")
            or self.default_max_tokens,
        }
        if system:
            payload["system"] = system
        for key in ("temperature", "top_p", "stream"):
            if body.get(key) is not None:
                payload[key] = body[key]
        stop = body.get("stop")
        if stop:
            payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        headers = {
            "content-type": "application/json",
            "anthropic-version": _ANTHROPIC_VERSION,
            **dep.headers,
        }
        if api_key:
            headers["x-api-key"] = api_key
        return httpx.Request("POST", f"{dep.base_url}/messages", headers=headers, json=payload)

    def parse(self, dep: Deployment, data: Mapping[str, Any]) -> dict[str, Any]:
        text = "".join(
            str(b.get("text", "")) for b in data.get("content", []) if b.get("type") == "text"
        )
        usage = data.get("usage", {})
        prompt = int(usage.get("input_tokens", 0))
        completion = int(usage.get("output_tokens", 0))
        return {
            "id": str(data.get("id") or f"chatcmpl-{uuid.uuid4().hex}"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(data.get("model", dep.model)),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": _STOP_REASONS.get(str(data.get("stop_reason")), "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    async def chunks(
        self, dep: Deployment, response: httpx.Response
    ) -> AsyncIterator[dict[str, Any]]:
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        prompt = 0

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": dep.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        async for data in _sse_data(response):
            if not data:
                continue
            event = json.loads(data)
            kind = event.get("type")
            if kind == "message_start":
                prompt = int(event.get("message", {}).get("usage", {}).get("input_tokens", 0))
                yield chunk({"role": "assistant", "content": ""})
            elif kind == "content_block_delta":
                text = event.get("delta", {}).get("text")
                if text:
                    yield chunk({"content": text})
            elif kind == "message_delta":
                reason = _STOP_REASONS.get(str(event.get("delta", {}).get("stop_reason")), "stop")
                completion = int(event.get("usage", {}).get("output_tokens", 0))
                last = chunk({}, reason)
                last["usage"] = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
                yield last
            elif kind == "message_stop":
                return


_ADAPTERS: dict[str, Adapter] = {"openai": OpenAIAdapter(), "anthropic": AnthropicAdapter()}


def adapter_for(dep: Deployment) -> Adapter:
    """The adapter for a deployment's provider family."""
    return _ADAPTERS[dep.provider]
