"""The `citewise` command line: ingest, ask, serve."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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


_state = {"verbose": False}


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show structured logs at the configured level.")
    ] = False,
) -> None:
    """Citewise: answers from your documents, every claim cited."""
    _state["verbose"] = verbose


def _settings(config: Path | None, *, quiet: bool = True) -> Settings:
    config = config or _env_config()
    settings = load_settings(config)
    level = "WARNING" if quiet and not _state["verbose"] else settings.log_level
    configure_logging(level, json=settings.log_json)
    return settings


def _env_config() -> Path | None:
    # The one environment read outside pydantic-settings: where the TOML file is.
    value = os.environ.get("CITEWISE_CONFIG_FILE")
    return Path(value) if value else None


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def _running_api(settings: Settings) -> str | None:
    """Base URL of a Citewise API already serving this data directory, if any."""
    url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        response = httpx.get(f"{url}/healthz", timeout=0.5)
    except httpx.HTTPError:
        return None
    return url if response.status_code == 200 else None


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
    config: ConfigOpt = None,
) -> None:
    """Parse, chunk, embed and index documents for a tenant.

    Unchanged files are skipped; changed files replace their previous version.
    A file that fails is reported and the rest of the batch goes on.
    """
    from citewise.runtime import Runtime

    settings = _settings(config)
    files = _expand(paths)
    acl = [g.strip() for g in groups.split(",") if g.strip()]
    if _running_api(settings):
        raise _fail(
            "a Citewise server owns the embedded index; stop it first "
            "(ingestion through the running server arrives with the ingestion service)"
        )
    try:
        runtime = Runtime.open(settings, start_llm=False)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    from citewise.ingest.pipeline import doc_id_for

    failures = 0
    try:
        with _progress() as progress:
            files_task = progress.add_task("files", total=len(files))
            sink = _ChunkProgress(progress, "chunks")
            for path, root in files:
                progress.update(files_task, description=f"files ({path.name})")
                outcome = runtime.ingestor.ingest_file(
                    path,
                    tenant_id=tenant,
                    doc_id=doc_id_for(path, root),
                    acl_groups=acl,
                    progress=sink,
                )
                progress.advance(files_task)
                if outcome.status == "failed":
                    failures += 1
                    progress.console.print(f"[red]failed[/] {path}: {outcome.error}")
                else:
                    progress.console.print(
                        f"[green]{outcome.status}[/] {path.name} "
                        f"(v{outcome.version}, {outcome.chunks} chunks)"
                    )
        runtime.store.optimize(tenant)
        total = runtime.store.count(tenant)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
    finally:
        runtime.close()
    console.print(f"tenant {tenant}: {total} chunks indexed; {failures} file(s) failed")
    if failures:
        raise typer.Exit(code=2)


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
            response = httpx.post(
                f"{api}/v1/ask",
                json={"question": question, "tenant": tenant, "groups": acl, "use_llm": llm},
                timeout=300,
            )
            if response.status_code != 200:
                raise _fail(response.json().get("error", {}).get("message", response.text))
            answer = response.json()
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


def _start_ui(settings: Settings) -> subprocess.Popen[bytes]:
    """Start Streamlit in a child process; it reaches the API over HTTP only."""
    from citewise import ui

    script = Path(ui.__file__).with_name("app.py")
    env = {
        **os.environ,
        "CITEWISE_UI__API_URL": f"http://{settings.api.host}:{settings.api.port}",
    }
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(settings.ui.port), "--server.address", settings.api.host,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    console.print(f"UI on http://{settings.api.host}:{settings.ui.port}")
    return subprocess.Popen(command, env=env)


eval_app = typer.Typer(help="Offline evaluation on datasets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[Path, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")],
    split: Annotated[str, typer.Option(help="Qrels split to evaluate.")] = "dev",
    mode: Annotated[
        list[str] | None,
        typer.Option(help="bm25, dense or hybrid; repeat for several [default: hybrid]."),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant holding the corpus (default beir-<name>).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the table as Markdown.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest a BEIR corpus through the real ingestion path and measure retrieval.

    The corpus is ingested once per tenant (unchanged documents are skipped on
    later runs); each judged query runs through the real search path and
    documents are ranked by their best chunk. The last line printed is
    ``nDCG@10 = X.XXXX`` of the last mode.
    """
    from citewise.eval.beir import load_beir
    from citewise.eval.retrieval import MODES, RetrievalReport, ingest_corpus, run_mode, tenant_for
    from citewise.runtime import Runtime

    modes = mode or ["hybrid"]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise _fail(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    settings = _settings(config)
    if _running_api(settings):
        raise _fail("a Citewise server owns the embedded index; stop it first")
    try:
        dataset = load_beir(beir, split)
        namespace = tenant or tenant_for(dataset)
        runtime = Runtime.open(settings, start_llm=False)
    except CitewiseError as exc:
        raise _fail(str(exc)) from exc
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
                settings={
                    "retrieval": settings.retrieval.model_dump(),
                    "embedding": settings.embedding.model,
                    "chunking": settings.chunking.model_dump(),
                },
            )
            for name in modes:
                queries = progress.add_task(f"{name} queries", total=len(dataset.queries))
                report.results.append(
                    run_mode(
                        runtime,
                        dataset,
                        name,  # type: ignore[arg-type]
                        tenant=namespace,
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
