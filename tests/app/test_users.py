"""Several users at once, through the app's real queue on loopback (gradio_client): each column streams its answer,
and two users asking at the same time get exactly the answers each gets alone (greedy decoding), nothing lost."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from laser_rag import store
from laser_rag.llm import GenerationConfig

QUESTIONS = ["What does the assert statement do?", "When is the pass statement useful?"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_users_at_once_get_their_solo_answers(tmp_path, make_engine, notes_file, local_llm):
    from gradio_client import Client

    from laser_rag_app.ui import serve

    port = _free_port()
    engine = make_engine(tmp_path / "app", llm=local_llm, generation=GenerationConfig(max_new_tokens=8),
                         port=port, preload=False)  # the app's own queue settings
    corpus = engine.add_upload(notes_file(tmp_path))
    demo = serve(engine.settings, block=False, engine=engine)
    try:
        users = [Client(f"http://127.0.0.1:{port}/", verbose=False) for _ in QUESTIONS]

        def ask(user: int) -> tuple[str, str, str, list[str]]:
            job = users[user].submit(QUESTIONS[user], corpus.key, 1, 3, False, False, api_name="/ask_basic")
            answer, latency, _chart, hits = job.result(timeout=300)
            return answer, hits, latency, [output[0] for output in job.outputs()]

        alone = [ask(user) for user in range(len(QUESTIONS))]
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            together = list(pool.map(ask, range(len(QUESTIONS))))
        for (answer, hits, latency, parts), (answer_alone, hits_alone, _, _) in zip(together, alone):
            assert answer and answer == answer_alone and hits == hits_alone
            assert "Total" in latency and "first token" in latency and "Error" not in latency
            growing = [part for part in parts if part and part != answer]  # the answer as it streamed in
            assert len(set(growing)) >= 2 and all(answer.startswith(part) for part in growing), parts
        assert alone[0][0] != alone[1][0]  # two questions, two answers: none was swapped or lost
    finally:
        demo.close()
        store.close_all()
