"""The SQL every part of the lab sends, and the XA identifiers it sends it with."""

from apps.runs.engine_api import Context


def xid(gtrid: str, bqual: str) -> str:
    """An XA transaction id as the server shows it and `XA RECOVER` lists it."""
    return f"'{gtrid}','{bqual}'"


def _rows_or_count(result) -> str:
    return f"{len(result)} rows" if isinstance(result, tuple) else f"{result} affected"


def sql(ctx: Context, conn, actor: str, node: str, statement: str, args=None):
    """Runs one statement through `ctx.cmd`, so it is recorded as one `cmd` event, and returns its
    rows (a SELECT, XA RECOVER) or the number of rows it changed."""
    with conn.cursor() as cur:
        # The driver binds the parameters once, here: the text recorded is the text sent.
        text = cur.mogrify(statement, args)

        def call():
            cur.execute(text)
            return cur.fetchall() if cur.description else cur.rowcount

        return ctx.cmd(node, text, call, actor=actor, summary=_rows_or_count)


def in_doubt(run_id: int, participant: str, rows) -> list[tuple[str, str]]:
    """This run's branches of `participant` among XA RECOVER's rows (a shared server lists every
    run's): [(gtrid, bqual)]."""
    prefix = f"r{run_id}-"
    found = []
    for _format, glen, blen, data in rows:
        data = data.decode() if isinstance(data, bytes) else data
        gtrid, bqual = data[:glen], data[glen : glen + blen]
        if gtrid.startswith(prefix) and bqual == participant:
            found.append((gtrid, bqual))
    return found
