"""The gateway app in-process, driven by the real ``openai`` client; async jobs survive restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from mloop.gateway import SqlJobStore, create_app, parse_config
from mloop.gateway.testing import MockModel, MockProvider


def gateway_config(**big: Any) -> Any:
    return parse_config(
        {
            "deployments": [
                {"name": "big", "base_url": "http://mock/v1", "model": "big", **big},
                {"name": "small", "base_url": "http://mock/v1", "model": "small"},
            ],
            "routes": {"smart": {"chain": ["big", "small"]}, "solo": {"chain": ["big"]}},
        }
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


def make_app(provider: MockProvider, tmp_path: Path, **kw: Any) -> FastAPI:
    store = SqlJobStore(f"sqlite:///{tmp_path / 'gateway.db'}")
    return create_app(
        kw.pop("config", gateway_config()),
        job_store=store,
        transport=httpx.ASGITransport(app=provider.app),
        **kw,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_openai_client_non_streaming_and_streaming(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(content="Hello there"), "small": MockModel()})
    app = make_app(provider, tmp_path)

    async def scenario() -> tuple[Any, str, list[str]]:
        async with running(app) as http:
            client = openai.AsyncOpenAI(
                base_url="http://gw/v1", api_key="unused", http_client=http, max_retries=0
            )
            answer = await client.chat.completions.create(
                model="smart", messages=[{"role": "user", "content": "hi"}], max_tokens=10
            )
            stream = await client.chat.completions.create(
                model="smart", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = ""
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
            models = [m.id async for m in client.models.list()]
            return answer, text, models

    answer, text, models = run(scenario())
    assert answer.choices[0].message.content == "Hello there"
    assert answer.usage is not None and answer.usage.total_tokens > 0
    assert text == "Hello there"
    assert models == ["smart", "solo"]


def test_errors_have_the_openai_shape_and_mloops_taxonomy(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app = make_app(provider, tmp_path)

    async def scenario() -> tuple[Any, httpx.Response]:
        async with running(app) as http:
            client = openai.AsyncOpenAI(
                base_url="http://gw/v1", api_key="x", http_client=http, max_retries=0
            )
            with pytest.raises(openai.NotFoundError) as info:
                await client.chat.completions.create(
                    model="clever", messages=[{"role": "user", "content": "hi"}]
                )
            bad = await http.post(
                "/v1/chat/completions",
                json={"model": "smart"},
                headers={"X-Mloop-Priority": "urgent"},
            )
            return info.value, bad

    err, bad = run(scenario())
    body = err.body
    assert isinstance(body, dict)
    assert body["type"] == "user_fixable" and body["code"] == "not_found"
    assert "routes ['smart', 'solo']" in body["message"] and body["retryable"] is False
    assert bad.status_code == 422
    assert set(bad.json()["error"]) >= {"message", "type", "code", "param", "retryable"}


def test_unmeetable_deadline_gets_429_with_retry_after(tmp_path: Path) -> None:
    provider = MockProvider(
        {"big": MockModel(rpm=60, burst_s=1, latency_s=0.01), "small": MockModel()}
    )
    config = gateway_config(rpm=60, burst_s=1)
    app = make_app(provider, tmp_path, config=config)

    async def scenario() -> httpx.Response:
        async with running(app) as http:
            body = {"model": "solo", "messages": [{"role": "user", "content": "q"}]}
            queued = [
                asyncio.ensure_future(
                    http.post(
                        "/v1/chat/completions", json=body, headers={"X-Mloop-Priority": "batch"}
                    )
                )
                for _ in range(10)
            ]
            await asyncio.sleep(0.05)
            refused = await http.post(
                "/v1/chat/completions", json=body, headers={"X-Mloop-Deadline-Ms": "500"}
            )
            for q in queued:
                q.cancel()
            await asyncio.gather(*queued, return_exceptions=True)
            return refused

    refused = run(scenario())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["retryable"] is True


def test_metrics_are_served_from_the_apps_own_registry(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app = make_app(provider, tmp_path)

    async def scenario() -> str:
        async with running(app) as http:
            body = {"model": "smart", "messages": [{"role": "user", "content": "q"}]}
            assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
            return (await http.get("/metrics")).text

    text = run(scenario())
    assert 'mloop_gateway_calls_total{deployment="big",outcome="ok"} 1.0' in text
    assert 'mloop_gateway_requests_total{outcome="ok",priority="interactive",route="smart"}' in text


async def poll(http: httpx.AsyncClient, job_id: str, until: Callable[[str], bool]) -> Any:
    for _ in range(500):
        job = (await http.get(f"/v1/jobs/{job_id}")).json()
        if until(job["status"]):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} stuck in {job['status']}")


def test_jobs_complete_and_call_their_webhook(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(content="done"), "small": MockModel()})
    hooks: list[dict[str, Any]] = []

    def hook(request: httpx.Request) -> httpx.Response:
        hooks.append(json.loads(request.content))
        return httpx.Response(204)

    app = make_app(
        provider,
        tmp_path,
        webhook_transport=httpx.MockTransport(hook),
        webhook_hosts=["hooks.example"],  # the operator's allow-list
    )

    async def scenario() -> Any:
        async with running(app) as http:
            submitted = await http.post(
                "/v1/jobs",
                json={
                    "request": {"model": "smart", "messages": [{"role": "user", "content": "q"}]},
                    "webhook_url": "http://hooks.example/done",
                },
            )
            assert submitted.status_code == 202
            job = await poll(http, submitted.json()["id"], lambda s: s == "succeeded")
            for _ in range(100):
                if hooks:
                    break
                await asyncio.sleep(0.01)
            missing = await http.get("/v1/jobs/job_nope")
            return job, missing

    job, missing = run(scenario())
    assert job["result"]["choices"][0]["message"]["content"] == "done"
    assert job["priority"] == "batch"
    assert hooks and hooks[0]["id"] == job["id"] and hooks[0]["status"] == "succeeded"
    assert missing.status_code == 404


def test_queued_jobs_survive_a_gateway_restart(tmp_path: Path) -> None:
    # First gateway: the only deployment allows one call per minute, so the second job waits.
    slow = MockProvider({"big": MockModel(rpm=1), "small": MockModel()})
    config = gateway_config(rpm=1, burst_s=1)
    first = make_app(slow, tmp_path, config=config)
    body = {"request": {"model": "solo", "messages": [{"role": "user", "content": "q"}]}}

    async def before_restart() -> list[str]:
        async with running(first) as http:
            ids = [(await http.post("/v1/jobs", json=body)).json()["id"] for _ in range(2)]
            await poll(http, ids[0], lambda s: s == "succeeded")
            waiting = (await http.get(f"/v1/jobs/{ids[1]}")).json()
            assert waiting["status"] in ("queued", "running")
            return ids

    ids = run(before_restart())
    # Second gateway on the same database, quota available: the job resumes and finishes.
    fresh = MockProvider({"big": MockModel(content="after restart"), "small": MockModel()})
    second = make_app(fresh, tmp_path)

    async def after_restart() -> Any:
        async with running(second) as http:
            return await poll(http, ids[1], lambda s: s in ("succeeded", "failed"))

    job = run(after_restart())
    assert job["status"] == "succeeded"
    assert job["result"]["choices"][0]["message"]["content"] == "after restart"


def test_mounted_in_another_app_without_lifespan(tmp_path: Path) -> None:
    # `mloop serve` can mount the gateway; Starlette runs no lifespan for mounted apps.
    provider = MockProvider({"big": MockModel(content="mounted"), "small": MockModel()})
    gateway_app = make_app(provider, tmp_path)
    parent = FastAPI()
    parent.mount("/gateway", gateway_app)

    async def scenario() -> tuple[httpx.Response, Any]:
        transport = httpx.ASGITransport(app=parent)
        async with httpx.AsyncClient(transport=transport, base_url="http://srv") as http:
            body = {"model": "smart", "messages": [{"role": "user", "content": "q"}]}
            answer = await http.post("/gateway/v1/chat/completions", json=body)
            job = (await http.post("/gateway/v1/jobs", json={"request": body})).json()
            for _ in range(500):
                done = (await http.get(f"/gateway/v1/jobs/{job['id']}")).json()
                if done["status"] == "succeeded":
                    break
                await asyncio.sleep(0.01)
        await gateway_app.state.gateway.aclose()
        return answer, done

    answer, done = run(scenario())
    assert answer.json()["choices"][0]["message"]["content"] == "mounted"
    assert done["status"] == "succeeded"


def test_requests_that_would_lock_a_deployment_are_refused_and_it_keeps_serving(
    tmp_path: Path,
) -> None:
    provider = MockProvider({"big": MockModel(tpm=60_000), "small": MockModel(tpm=60_000)})
    config = gateway_config(tpm=60_000)
    app = make_app(provider, tmp_path, config=config)
    messages = [{"role": "user", "content": "hi"}]

    async def scenario() -> list[httpx.Response]:
        async with running(app) as http:
            answers = []
            for body, headers in (
                ({"model": "solo", "messages": messages, "max_tokens": 10**12}, {}),
                ({"model": "solo", "messages": messages, "max_tokens": 1_000_000}, {}),
                ({"model": "solo", "messages": messages, "max_tokens": 65_000}, {}),
                ({"model": "solo", "messages": messages}, {"X-Mloop-Deadline-Ms": "nan"}),
                ({"model": "solo", "messages": messages}, {"X-Mloop-Deadline-Ms": "inf"}),
                ({"model": "solo", "messages": messages}, {"X-Mloop-Deadline-Ms": "-5"}),
                ({"model": "solo", "messages": messages, "max_tokens": 20}, {}),
            ):
                answers.append(
                    await asyncio.wait_for(
                        http.post("/v1/chat/completions", json=body, headers=headers), 10
                    )
                )
            return answers

    *refused, served = run(scenario())
    for r in refused:
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["type"] == "user_fixable" and error["param"] is not None
    assert "max_tokens" in refused[0].text and "65536" in refused[0].text
    assert "lets through at once" in refused[2].text
    assert "one hour" in refused[3].text
    # Nothing was charged: the next ordinary request is answered at once.
    assert served.status_code == 200, served.text
    assert provider.stats["big"].ok == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/chat/completions", '{"model": "smart", "messages": '
         '[{"role": "user", "content": "hi"}], "temperature": NaN}', 422),
        ("POST", "/v1/chat/completions",
         '{"model": "smart", "messages": ' + "[" * 10_000 + "]" * 10_000 + "}", 422),
        ("POST", "/v1/chat/completions", '{"model": "smart", "messages": ["hi"]}', 422),
        ("POST", "/v1/chat/completions", '{"model": "smart", "messages": [null]}', 422),
        ("POST", "/v1/chat/completions",
         '{"model": "smart", "messages": [{"role": "user", "content": {"x": 1}}]}', 422),
        ("POST", "/v1/chat/completions", '{"model": "smart", "messages": '
         '[{"role": "user", "content": "hi"}], "max_tokens": "lots"}', 422),
        ("GET", "/v1/nothing", None, 404),
        ("DELETE", "/v1/chat/completions", None, 405),
    ],
    ids=["nan", "deep", "bare-string", "null", "object-content", "max-tokens-text", "404", "405"],
)  # fmt: skip
def test_bad_requests_get_the_error_shape_never_a_500(
    tmp_path: Path, method: str, path: str, body: str | None, status: int
) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app = make_app(provider, tmp_path)

    async def scenario() -> httpx.Response:
        async with running(app) as http:
            headers = {"content-type": "application/json"}
            return await http.request(method, path, content=body, headers=headers)

    r = run(scenario())
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == "user_fixable" and error["message"]
    assert provider.stats["big"].calls == 0


def test_retry_after_of_never_is_left_out_not_a_crash() -> None:
    from mloop.errors import Unavailable

    err = Unavailable("every deployment is down", retry_after=float("inf"))
    assert err.headers() == {} and "retry_after" not in err.to_dict()["error"]


def _keyed_app(tmp_path: Path, provider: MockProvider) -> tuple[FastAPI, dict[str, str]]:
    from mloop.auth import KeyStore
    from mloop.config import load_settings
    from mloop.store import MetadataStore

    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    keys = KeyStore(MetadataStore.from_settings(settings))
    tokens = {scope: keys.create(scope, [scope])[1] for scope in ("gateway", "predict", "admin")}
    app = make_app(provider, tmp_path, settings=settings, auth=True)
    return app, tokens


def test_keys_are_required_with_the_gateway_scope(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app, tokens = _keyed_app(tmp_path, provider)
    body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> list[int]:
        async with running(app) as http:
            out = []
            for token in (None, tokens["predict"], tokens["gateway"], tokens["admin"]):
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                r = await http.post("/v1/chat/completions", json=body, headers=headers)
                out.append(r.status_code)
            metrics = await http.get(
                "/metrics", headers={"Authorization": f"Bearer {tokens['gateway']}"}
            )
            health = await http.get("/healthz")
            return [*out, metrics.status_code, health.status_code]

    assert run(scenario()) == [401, 403, 200, 200, 403, 200]
    assert provider.stats["big"].ok == 2


def test_webhooks_only_go_to_loopback_or_allowed_hosts(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app = make_app(provider, tmp_path)
    request = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> list[httpx.Response]:
        async with running(app) as http:
            return [
                await http.post("/v1/jobs", json={"request": request, "webhook_url": url})
                for url in ("http://169.254.169.254/latest", "file:///etc/passwd")
            ]

    elsewhere, not_http = run(scenario())
    assert elsewhere.status_code == 403 and "webhook_hosts" in elsewhere.text
    assert not_http.status_code == 422


def test_a_body_over_the_limit_is_a_413(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app = make_app(provider, tmp_path)
    huge = (
        '{"model": "smart", "messages": [{"role": "user", "content": "' + "x" * (5 << 20) + '"}]}'
    )

    async def scenario() -> httpx.Response:
        async with running(app) as http:
            return await http.post(
                "/v1/chat/completions", content=huge, headers={"content-type": "application/json"}
            )

    r = run(scenario())
    assert r.status_code == 413 and r.json()["error"]["type"] == "user_fixable"
    assert provider.stats["big"].calls == 0
