"""The chat API and MCP server of `ragline serve`, through the official `openai` and `mcp` clients.

One real `ragline serve` (real Prefect server, models, embedded store) serves a three-document
corpus for the module; every request it answers must show up as a `serve-request` Prefect run
with its artifact. Answers are kept short (max_tokens): the tests are about serving.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from ragline.conversation import Turn, accept_rewrite, looks_standalone, split_conversation, standalone_question
from ragline.deployments.chat_api import after_streamed_tokens, comparable_text
from tests.conftest import free_port, run_cli
from tests.serving import ServeProcess, run_artifacts, serve_env

pytestmark = pytest.mark.slow

API_KEY = "test-key-18"
DOCS = {
    "acme.md": "# Acme Rockets\n\nAcme Rockets builds reusable launch vehicles for small satellites. "
    "Acme Rockets was founded in 1998 by Wilhelmina Carraway in Tucson.\n",
    "globex.md": "# Globex Shipping\n\nGlobex Shipping runs container ships between Rotterdam and "
    "Singapore. Globex Shipping was founded in 1975 by Bartholomew Quist.\n",
    "tea.md": "# Green tea\n\nGreen tea is brewed with water at 80 degrees Celsius for two minutes; "
    "boiling water makes it bitter.\n",
}
RECORDED: list[tuple[str, str]] = []  # (flow run name, question): checked against Prefect at the end


@pytest.fixture(scope="module")
def chat(prefect_api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chat")
    corpus = tmp / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    port = free_port()
    env = {
        **serve_env(prefect_api, tmp / "data", corpus),
        "RAGLINE_SERVE__PORT": str(port),
        "RAGLINE_SERVE__API_KEY": API_KEY,
        "RAGLINE_GENERATION__MAX_TOKENS": "24",
        "RAGLINE_RETRIEVAL__K": "2",
        "RAGLINE_SERVE__REWRITE_MAX_TOKENS": "24",
        # Generated (not extractive) answers: streaming and serialized generation are under test.
        "RAGLINE_ANSWER__MODE": "generate",
        # One llama.cpp thread: on a busy 2-core machine two threads spin-wait each other (~10x slower).
        "RAGLINE_GENERATION__THREADS": "1",
    }
    server = ServeProcess(env, tmp / "serve.log")
    try:
        server.wait_ready()
        result = run_cli("ingest", str(corpus), env=env)
        assert result.returncode == 0, result.stderr + server.output()
        yield {"api": prefect_api, "url": f"http://127.0.0.1:{port}", "server": server}
    finally:
        server.stop()


def openai_client(chat, api_key: str = API_KEY):
    from openai import OpenAI

    return OpenAI(base_url=chat["url"] + "/v1", api_key=api_key, max_retries=0, timeout=300)


def check_citations(content: str, citations: list[dict]) -> None:
    """Structured citations name corpus files and are listed, numbered, at the end of the text."""
    for c in citations:
        assert c["source"] in DOCS and c["text"].strip(), c
        assert f"[{c['n']}] {c['source']}" in content.split("Sources:")[-1], content


def test_requests_without_the_api_key_get_401(chat):
    import openai

    assert httpx.get(chat["url"] + "/v1/models", timeout=30).status_code == 401
    response = httpx.post(chat["url"] + "/mcp", json={}, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai_client(chat, api_key="wrong").models.list()
    assert httpx.get(chat["url"] + "/health", timeout=30).status_code == 200


def test_models_list_the_collections(chat):
    ids = [m.id for m in openai_client(chat).models.list()]
    assert ids == ["ragline", "ragline:ragline"]


def test_openai_client_non_streaming(chat):
    question = "Who founded Globex Shipping?"
    response = openai_client(chat).chat.completions.create(
        model="ragline:ragline", messages=[{"role": "user", "content": question}], max_tokens=12
    )
    content = response.choices[0].message.content
    extra = response.model_extra
    assert content.strip() and response.choices[0].finish_reason == "stop"
    assert extra["ragline"]["retrieved"][0]["source"] == "globex.md"
    check_citations(content, extra["citations"])
    assert content.startswith(extra["ragline"]["answer"])
    assert response.id == f"chatcmpl-{extra['ragline']['request_id']}"
    RECORDED.append((f"chat-{extra['ragline']['request_id']}", question))


def test_openai_client_streaming(chat):
    question = "At what temperature is green tea brewed?"
    stream = openai_client(chat).chat.completions.create(
        model="ragline:ragline", messages=[{"role": "user", "content": question}], max_tokens=12, stream=True
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert len(chunks) > 4, "the answer did not arrive in pieces"
    assert content.strip()
    extra = final.model_extra
    assert extra["ragline"]["retrieved"][0]["source"] == "tea.md"
    check_citations(content, extra["citations"])
    # The stream ends with the checked answer (a non-streamed reply's text): its words as the
    # tokens, or, when the check changed more than citation numbers, the checked answer after them.
    checked, mode = extra["ragline"]["answer"], extra["ragline"]["mode"]
    streamed = content.split("Sources:")[0]
    assert comparable_text(streamed).endswith(comparable_text(checked)), (checked, content)
    if mode == "extractive-fallback":
        assert "The sources do not support the generated text above." in content
    RECORDED.append((f"chat-{extra['ragline']['request_id']}", question))


def test_what_a_stream_sends_after_its_tokens():
    from ragline.records import Answer

    generated = Answer(answer="Green tea is brewed at 80 C [1].", citations=[], timings={}, mode="generate")
    assert after_streamed_tokens("Green tea is brewed\nat 80 C [1].", generated) == ""  # the same words
    assert after_streamed_tokens("Green tea is brewed at 80 C.", generated) == ""  # the check placed [1]
    assert after_streamed_tokens("", generated) == generated.answer  # nothing streamed: sent whole
    fallback = generated.model_copy(update={"mode": "extractive-fallback", "answer": "Brew green tea at 80 C [1]."})
    tail = after_streamed_tokens("Tea is hot.", fallback)
    assert tail.endswith("\nBrew green tea at 80 C [1].") and "do not support the generated text" in tail
    repaired = generated.model_copy(update={"invalid_citations": [7]})
    assert after_streamed_tokens("Green tea is brewed at 80 C [1][7].", repaired) == (
        "\n\n(Citations [7] name no passage: ignore them.)"
    )
    rewritten = generated.model_copy(update={"answer": "Green tea is brewed at 80 C [1]. It is mild."})
    assert after_streamed_tokens("Green tea is brewed at 80 C.", rewritten).endswith("sources:\n" + rewritten.answer)


def test_follow_up_question_is_made_standalone(chat):
    messages = [
        {"role": "user", "content": "What does Acme Rockets build?"},
        {"role": "assistant", "content": "Acme Rockets builds reusable launch vehicles for small satellites."},
        {"role": "user", "content": "and who founded it?"},
    ]
    response = openai_client(chat).chat.completions.create(model="ragline", messages=messages, max_tokens=8)
    about = response.model_extra["ragline"]
    assert about["rewrite"] in ("model", "heuristic"), about
    assert "acme" in about["question"].lower(), about["question"]
    assert about["retrieved"][0]["source"] == "acme.md", about["retrieved"]
    RECORDED.append((f"chat-{about['request_id']}", about["question"]))


async def mcp_session_calls(url: str) -> dict:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx2.AsyncClient(headers=headers, timeout=300) as http:
        async with Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
            tools = await client.list_tools()
            searched = await client.call_tool("search", {"query": "Who founded Acme Rockets?", "k": 2})
            asked = await client.call_tool("ask", {"question": "What does Globex Shipping run?", "k": 1})
            resources = await client.list_resources()
            collection = await client.read_resource("ragline://collections/ragline")
    return {
        "tools": sorted(t.name for t in tools.tools),
        "search": searched,
        "ask": asked,
        "resources": [str(r.uri) for r in resources.resources],
        "collection": json.loads(collection.contents[0].text),
    }


def test_mcp_client_searches_and_asks(chat):
    calls = asyncio.run(mcp_session_calls(chat["url"]))
    assert calls["tools"] == ["ask", "search"]
    searched = calls["search"].structured_content
    assert not calls["search"].is_error and searched["passages"][0]["source"] == "acme.md"
    assert "Carraway" in searched["passages"][0]["text"]
    asked = calls["ask"].structured_content
    assert not calls["ask"].is_error and asked["answer"].strip()
    assert all(c["source"] == "globex.md" for c in asked["citations"]), asked["citations"]
    assert "ragline://collections" in calls["resources"]
    assert calls["collection"]["model"] == "ragline:ragline" and calls["collection"]["chunks"] >= len(DOCS)
    RECORDED.append((f"mcp-search-{searched['request_id']}", "Who founded Acme Rockets?"))
    RECORDED.append((f"mcp-ask-{asked['request_id']}", "What does Globex Shipping run?"))


def recorded_runs(api: str, names: list[str], timeout_s: float = 120) -> dict[str, dict]:
    """The completed `serve-request` runs with these names (recorded after the responses)."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = {"flow_runs": {"name": {"any_": names}}, "flows": {"name": {"any_": ["serve-request"]}}}
        runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()
        done = {r["name"]: r for r in runs if r["state_type"] == "COMPLETED"}
        if len(done) == len(names) or time.monotonic() > deadline:
            return done
        time.sleep(1)


def test_each_request_is_a_prefect_run_with_its_artifact(chat):
    assert len(RECORDED) >= 5, "run the whole module: the other tests make the requests"
    runs = recorded_runs(chat["api"], [name for name, _ in RECORDED])
    assert sorted(runs) == sorted(name for name, _ in RECORDED), chat["server"].output()[-3000:]
    for name, question in RECORDED:
        markdowns = [a["data"] for a in run_artifacts(chat["api"], runs[name]["id"]) if a["type"] == "markdown"]
        assert markdowns and question in markdowns[0], (name, markdowns)


# -- logic without the server: the HTTP mapping of a full queue, and the follow-up rewrite ------


class FullService:
    """Only what the chat routes touch before answering; its admission refuses everything."""

    def __init__(self):
        from ragline.deployments.answer_service import Admission
        from ragline.settings import get_settings

        self.settings = get_settings()
        self.admission = Admission(limit=0)

    def collections(self) -> list[str]:
        return [self.settings.store.collection]

    def check(self, question: str, k: int | None) -> None:
        pass


def test_a_full_queue_answers_503_with_retry_after():
    from ragline.deployments.chat_api import create_app

    async def post():
        transport = httpx.ASGITransport(app=create_app(FullService()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"model": "ragline", "messages": [{"role": "user", "content": "hi?"}], "stream": True}
            return await client.post("/v1/chat/completions", json=body)

    response = asyncio.run(post())
    assert response.status_code == 503 and response.headers["retry-after"]
    assert "serve.max_queue" in response.json()["error"]["message"]


class ScriptedGenerator:
    """A Generator whose rewrite is given (the protocol's generate only)."""

    def __init__(self, reply: str):
        self.reply = reply

    def generate(self, messages, max_tokens, temperature) -> str:
        return self.reply


HISTORY = [Turn("user", "What does Acme Rockets build?"), Turn("assistant", "Reusable launch vehicles.")]


def test_split_conversation_takes_the_last_user_message():
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "What does Acme Rockets build?"},
        {"role": "assistant", "content": "Launch vehicles."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "and who founded it?"}, {"type": "image_url", "text": None}],
        },
    ]
    question, history = split_conversation(messages)
    assert question == "and who founded it?"
    assert [t.role for t in history] == ["user", "assistant"]
    with pytest.raises(ValueError, match="no user message"):
        split_conversation([{"role": "system", "content": "x"}])


def test_follow_up_rewrite_keeps_standalone_questions_and_checks_the_model():
    assert looks_standalone("Who founded Globex Shipping?")
    assert not looks_standalone("and who founded it?")
    assert standalone_question("Who founded Globex?", HISTORY, ScriptedGenerator("x"), "model", 32) == (
        "Who founded Globex?",
        "kept",
    )
    good = standalone_question("who founded it?", HISTORY, ScriptedGenerator("Who founded Acme Rockets?"), "model", 32)
    assert good == ("Who founded Acme Rockets?", "model")
    # A model that echoes the follow-up resolved nothing: the previous question is prepended instead.
    echoed = standalone_question("who founded it?", HISTORY, ScriptedGenerator("who founded it?"), "model", 32)
    assert echoed == ("What does Acme Rockets build? who founded it?", "heuristic")
    assert accept_rewrite("", "who founded it?", HISTORY) is None
    # Small models echo the earlier question (drops "founded") or answer instead of asking.
    assert accept_rewrite("What does Acme Rockets build?", "who founded it?", HISTORY) is None
    assert accept_rewrite("Acme Rockets was founded by Ace.", "who founded it?", HISTORY) is None
    # A rewrite that drops a negation asks the opposite question.
    assert accept_rewrite("Was Acme Rockets founded in Ohio?", "was it not founded in Ohio?", HISTORY) is None
    assert accept_rewrite("Was Acme Rockets not founded in Ohio?", "was it not founded in Ohio?", HISTORY)


def test_stdio_command_refers_to_http_when_serve_owns_the_store(chat, tmp_path):
    env = {**chat["server"].env}
    result = run_cli("mcp", env=env, timeout=300)
    assert result.returncode == 1
    assert "/mcp" in result.stderr and "owns the store" in " ".join(result.stderr.split())
