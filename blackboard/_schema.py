"""The tables of a blackboard file, as the store creates and checks them.

Written by ``python -m blackboard._models`` from the SQLModel classes of
``_models.py`` (do not edit the DDL or the columns by hand), so that the store
needs no SQLAlchemy to open or create a file.
"""

FORMAT_NAME = 'duckdb-blackboard'
FORMAT_VERSION = 2

DDL: tuple[str, ...] = (
    'CREATE TABLE bb_meta (name VARCHAR, value VARCHAR)',
    'CREATE TABLE bb_run (id INTEGER, name VARCHAR, problem TEXT, config TEXT, state VARCHAR, outcome VARCHAR, result TEXT, cycles INTEGER, activations INTEGER, matched BIGINT, head VARCHAR, created_at TIMESTAMP WITH TIME ZONE, finished_at TIMESTAMP WITH TIME ZONE)',
    'CREATE TABLE bb_entry (run INTEGER, id BIGINT, space VARCHAR, key VARCHAR, value TEXT, confidence DOUBLE PRECISION, status VARCHAR, source VARCHAR, cycle INTEGER, context INTEGER, supports TEXT, revises BIGINT)',
    'CREATE TABLE bb_event (run INTEGER, seq BIGINT, cycle INTEGER, kind VARCHAR, entry BIGINT, source VARCHAR, activation BIGINT, details TEXT, hash VARCHAR)',
    'CREATE TABLE bb_activation (run INTEGER, id BIGINT, source VARCHAR, triggers TEXT, rating DOUBLE PRECISION, state VARCHAR, attempts INTEGER, error TEXT, queued_cycle INTEGER, cycle INTEGER, seconds DOUBLE PRECISION, produced TEXT, started DOUBLE PRECISION)',
    'CREATE TABLE bb_context (run INTEGER, id INTEGER, parent INTEGER, label TEXT, status VARCHAR, depth INTEGER, alternatives INTEGER, confidence DOUBLE PRECISION, cycle INTEGER)',
    'CREATE TABLE bb_batch (batch VARCHAR, item INTEGER, domain VARCHAR, problem TEXT, status VARCHAR, seconds DOUBLE PRECISION, activations INTEGER, run INTEGER, result TEXT, worker VARCHAR, finished_at TIMESTAMP WITH TIME ZONE)',
    'CREATE SEQUENCE bb_run_id START 1',
)

COLUMNS: dict[str, tuple[str, ...]] = {
    'bb_meta': ('name', 'value'),
    'bb_run': ('id', 'name', 'problem', 'config', 'state', 'outcome', 'result', 'cycles', 'activations', 'matched', 'head', 'created_at', 'finished_at'),
    'bb_entry': ('run', 'id', 'space', 'key', 'value', 'confidence', 'status', 'source', 'cycle', 'context', 'supports', 'revises'),
    'bb_event': ('run', 'seq', 'cycle', 'kind', 'entry', 'source', 'activation', 'details', 'hash'),
    'bb_activation': ('run', 'id', 'source', 'triggers', 'rating', 'state', 'attempts', 'error', 'queued_cycle', 'cycle', 'seconds', 'produced', 'started'),
    'bb_context': ('run', 'id', 'parent', 'label', 'status', 'depth', 'alternatives', 'confidence', 'cycle'),
    'bb_batch': ('batch', 'item', 'domain', 'problem', 'status', 'seconds', 'activations', 'run', 'result', 'worker', 'finished_at'),
}
