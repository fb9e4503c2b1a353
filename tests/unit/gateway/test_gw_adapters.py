"""Provider adapters against an in-package mock transport: OpenAI pass-through, Anthropic."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from gw_helpers import make_config

from mloop.gateway import Gateway
from mloop.gateway._adapters import AnthropicAdapter
from mloop.gateway.testing import VirtualClock


def anthropic_handler(seen: list[httpx.Request]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        headers = {
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-limit": "50",
        }
        if body.get("stream"):
            events = [
                {"type": "message_start", "message": {"usage": {"input_tokens": 12}}},
                {"type": "content_block_start", "index": 0},
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hel"}},
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 2},
                },
                {"type": "message_stop"},
            ]
            text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
            return httpx.Response(
                200, text=text, headers={**headers, "content-type": "text/event-stream"}
            )
        return httpx.Response(
            200,
            headers=headers,
            json={
                "id": "msg_1",
                "type": "message",
                "model": "claude-x",
                "content": [{"type": "text", "text": "Hello"}],
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 12, "output_tokens": 2},
            },
        )

    return handler


def config() -> Any:
    return make_config(
        [
            {
                "name": "claude",
                "provider": "anthropic",
                "base_url": "https://api.example/v1",
                "model": "claude-x",
                "api_key_env": "ANTHROPIC_KEY",
                "rpm": 50,
            }
        ]
    )


def test_anthropic_request_translation_and_answer() -> None:
    seen: list[httpx.Request] = []
    gw = Gateway(
        config(),
        transport=httpx.MockTransport(anthropic_handler(seen)),
        clock=VirtualClock(),
        env={"ANTHROPIC_KEY": "sk-ant"},
    )
    body = {
        "model": "smart",
        "max_tokens": 50,
        "stop": "END",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }

    async def run() -> Any:
        try:
            return await gw.chat(body)
        finally:
            await gw.aclose()

    result = asyncio.run(run())
    sent = seen[0]
    assert sent.url == "https://api.example/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant" and "anthropic-version" in sent.headers
    payload = json.loads(sent.content)
    assert payload == {
        "model": "claude-x",
        "system": "Be brief.",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
        "stop_sequences": ["END"],
        "stream": False,
    }
    choice = result.response["choices"][0]
    assert choice["message"]["content"] == "Hello" and choice["finish_reason"] == "length"
    assert result.response["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 2,
        "total_tokens": 14,
    }


def test_anthropic_stream_becomes_openai_chunks() -> None:
    seen: list[httpx.Request] = []
    gw = Gateway(
        config(),
        transport=httpx.MockTransport(anthropic_handler(seen)),
        clock=VirtualClock(),
        env={},
    )

    async def run() -> list[dict[str, Any]]:
        started = await gw.stream(
            {"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}
        )
        chunks = [c async for c in started.chunks]
        await gw.aclose()
        return chunks

    chunks = asyncio.run(run())
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 14
    assert json.loads(seen[0].content)["max_tokens"] == AnthropicAdapter.default_max_tokens


def test_openai_adapter_sends_the_deployment_model_and_bearer_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
                "usage": {"total_tokens": 3},
            },
        )

    cfg = make_config(
        [
            {
                "name": "gpt",
                "model": "gpt-real",
                "api_key_env": "K",
                "headers": {"OpenAI-Organization": "org-1"},
            }
        ]
    )
    gw = Gateway(
        cfg, transport=httpx.MockTransport(handler), clock=VirtualClock(), env={"K": "sk-1"}
    )

    async def run() -> Any:
        try:
            return await gw.chat(
                {
                    "model": "smart",
                    "temperature": 0.2,
                    "messages": [{"role": "user", "content": "q"}],
                }
            )
        finally:
            await gw.aclose()

    result = asyncio.run(run())
    assert seen[0].url == "http://mock/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-1"
    assert seen[0].headers["openai-organization"] == "org-1"
    assert json.loads(seen[0].content)["model"] == "gpt-real"
    assert json.loads(seen[0].content)["temperature"] == 0.2
    assert result.headers()["x-mloop-deployment"] == "gpt"
