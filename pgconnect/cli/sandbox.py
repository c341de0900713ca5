"""``pgconnect sandbox start|stop|status``: a throwaway local PostgreSQL with TLS (docs/sandbox.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, JsonOpt

if TYPE_CHECKING:
    from pgconnect.sandbox import State

DEFAULT_ENV = "sandbox"  # pgconnect.sandbox.DEFAULT_ENV, without importing it for --help

sandbox_app = typer.Typer(
    help="""A throwaway local PostgreSQL with TLS on, to try pgconnect against.

    Examples:

      pgconnect sandbox start

      pgconnect sandbox status --json

      pgconnect sandbox stop
    """,
    no_args_is_help=True,
    rich_markup_mode=None,
)

# --env for the sandbox commands: the environment the sandbox writes and reads. It defaults to
# "sandbox", never to $PGCONNECT_ENV: a sandbox must not overwrite, say, staging's DB_HOST.
SandboxEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment the sandbox uses ([env.NAME] in the project file; default: sandbox, "
        "whatever $PGCONNECT_ENV says).",
        callback=common.remember("env"),
        autocompletion=common.complete_env,
        metavar="NAME",
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port",
        min=1,
        max=65535,
        metavar="N",
        help="TCP port for the server (default: a free one).",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")


def _load(config: str | None, env: str | None, *, creating: bool) -> common.Context:
    from pgconnect import sandbox

    chosen = env or DEFAULT_ENV
    ctx = common.load(config, chosen, env_may_be_new=True)
    if not creating:
        sandbox.check_env(ctx.project, chosen, explicit=env is not None)
    return ctx


def _env_flag(env: str) -> str:
    return "" if env == DEFAULT_ENV else f" -e {env}"


@sandbox_app.command("start")
def start(
    port: PortOpt = None,
    client_cert: Annotated[
        bool,
        typer.Option(
            "--client-cert",
            help="Also demand a client certificate (mutual TLS: hostssl … clientcert=verify-full); "
            "issue one for the role from the sandbox CA and write DB_SSLCERT/DB_SSLKEY.",
        ),
    ] = False,
    config: ConfigOpt = None,
    env: SandboxEnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Start a local PostgreSQL with TLS and point [env.sandbox] at it (password in the keyring).

    A fresh CA and server certificate (localhost, 127.0.0.1, ::1), SCRAM, a role "app" and a database
    named after the project. Writes DB_HOST, DB_PORT, DB_USERNAME, DB_NAME, DB_SSLMODE=verify-full and
    DB_SSLROOTCERT to [env.sandbox.vars] and stores a random DB_PASSWORD secret for that environment.
    Data lives in .pgconnect/ beside the project file. Already running: says so, exit 0; if its
    DB_PASSWORD is missing from the secret store or no longer logs in (a new keyring, a secret put
    over it), gives its role a new password and stores it.

    Examples:

      pgconnect sandbox start

      pgconnect sandbox start --port 54329

      pgconnect sandbox start && pgconnect check -e sandbox --sslmode all

      pgconnect sandbox start --client-cert    # mutual TLS: a client certificate is required
    """
    from pgconnect import sandbox

    ctx = _load(config, env, creating=True)
    assert ctx.env is not None
    store = common.open_store()
    with common.progress("starting the sandbox") as step:
        started = sandbox.start(
            ctx.project, ctx.env, store, port=port, progress=step, client_cert=client_cert
        )
    state = started.state
    flag = _env_flag(state.env)
    if started.already_running:
        common.note(
            f"sandbox{flag} is already running on {state.host}:{state.port} "
            f"(data {state.data_dir}); stop it with: pgconnect sandbox stop{flag}"
        )
        if client_cert and "DB_SSLCERT" not in started.vars:
            common.warn(
                "--client-cert was not used: the running sandbox does not demand client "
                f"certificates; restart it: pgconnect sandbox stop{flag} && "
                f"pgconnect sandbox start{flag} --client-cert"
            )
        if port is not None and port != state.port:
            common.warn(f"--port {port} was not used: the running sandbox keeps port {state.port}")
        _say_recovered(started.recovered, state, started.service, store.kind)
    else:
        runs_as = f"; the server runs as {state.server_user}" if state.server_user else ""
        mutual = " and a client certificate required" if client_cert else ""
        common.note(
            f"sandbox running: PostgreSQL {started.server_version} on {state.host}:{state.port}, "
            f"TLS with its own CA{mutual}{runs_as}"
        )
        where = "" if state.in_project else " (the server user cannot reach the project folder)"
        common.note(f"  data    {state.data_dir}{where}")
        common.note(f"  vars    [env.{state.env}.vars] in {ctx.project.path}:")
        for name, value in started.vars.items():
            common.note(f"            {name} = {value}")
        where_stored = "keyring" if store.kind == "keyring" else f"{store.kind} store"
        common.note(f"  secret  DB_PASSWORD in the {where_stored} ({started.service})")
        common.note(f"try:  pgconnect check -e {state.env} --sslmode all")
        common.note(f'      pgconnect query -e {state.env} "select current_user, version()"')
        common.note(f"stop: pgconnect sandbox stop{flag}")
    if started.ignored_by_git is False:
        common.note("note: add .pgconnect/ to .gitignore (it holds the sandbox's data and CA)")
    elif started.ignored_by_git is None:
        common.note("note: .pgconnect/ holds the sandbox's data and CA; keep it out of git")
    if started.password_in_environment:
        common.warn(
            "DB_PASSWORD is set in your environment: it overrides the sandbox's secret for "
            "every command run with it"
        )


def _say_recovered(reason: str | None, state: State, service: str, kind: str) -> None:
    """The running sandbox's password was missing or wrong and was set anew (sandbox.recover)."""
    if reason is None:
        return
    where = "keyring" if kind == "keyring" else f"{kind} store"
    why = (
        f"its DB_PASSWORD was not in the {where} ({service})"
        if reason == "missing"
        else f"the DB_PASSWORD in the {where} ({service}) did not log in (replaced?)"
    )
    common.note(
        f"recovered the sandbox's password: {why}; gave role {state.user} a new password "
        f"(as the cluster's superuser) and stored it in {service}"
    )


@sandbox_app.command("stop")
def stop(
    config: ConfigOpt = None,
    env: SandboxEnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Stop the sandbox (pg_ctl -m fast), leave no process behind, and remove its data.

    The [env.sandbox] variables and the DB_PASSWORD secret stay; the next start replaces them.
    Not running is not an error (exit 0), so it is safe in a cleanup trap.

    Examples:

      pgconnect sandbox stop

      trap 'pgconnect sandbox stop' EXIT
    """
    from pgconnect import sandbox

    ctx = _load(config, env, creating=False)
    assert ctx.env is not None
    stopped = sandbox.stop(ctx.project, ctx.env)
    flag = _env_flag(ctx.env)
    if stopped.state is None:
        common.note(f"no sandbox{flag} is running for {ctx.project.path}")
        return
    if stopped.was_running:
        common.note(f"stopped the sandbox{flag} on port {stopped.state.port}")
    else:
        common.note(f"the sandbox{flag} was not running (it had stopped); cleaned up")
    for path in stopped.removed:
        common.note(f"  removed {path}")


@sandbox_app.command("status")
def status(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    env: SandboxEnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Say whether the sandbox runs, with its port and data folder: exit 0 running, 1 not.

    Examples:

      pgconnect sandbox status

      pgconnect sandbox status --json

      pgconnect sandbox status >/dev/null || pgconnect sandbox start
    """
    from pgconnect import sandbox

    ctx = _load(config, env, creating=False)
    assert ctx.env is not None
    st = sandbox.status(ctx.project, ctx.env)
    if json_out:
        data = {"env": st.env, "running": st.running, **_public(st.state, st.running)}
        common.out(json.dumps(data, ensure_ascii=False))
    elif st.state is None:
        common.out(f"sandbox{_env_flag(st.env)}: not running")
    else:
        state = st.state
        common.out(f"sandbox{_env_flag(st.env)}: {'running' if st.running else 'not running'}")
        rows = [
            ("port", str(state.port)),
            ("host", state.host),
            ("database", state.database),
            ("user", state.user),
            ("data dir", state.data_dir),
            ("pid", str(state.pid) if st.running else "-"),
            ("server user", state.server_user or "(you)"),
            ("started", state.started_at),
        ]
        from pgconnect.safetext import escape  # the state file is input: no raw escapes

        for key, value in rows:
            common.out(escape(f"  {key.ljust(11)}  {value}"))
        if st.stale:
            common.warn(
                "the server stopped without `pgconnect sandbox stop` (crash, kill or reboot); "
                f"run pgconnect sandbox stop{_env_flag(st.env)} to clean up, then start again"
            )
    if not st.running:
        raise typer.Exit(1)


def _public(state: State | None, running: bool) -> dict[str, object]:
    if state is None:
        return {"port": None, "data_dir": None, "pid": None}
    return {
        "port": state.port,
        "host": state.host,
        "database": state.database,
        "user": state.user,
        "data_dir": state.data_dir,
        "pid": state.pid if running else None,
        "server_user": state.server_user,
        "in_project": state.in_project,
        "started_at": state.started_at,
    }
