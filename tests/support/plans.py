"""What PostgreSQL plans for the queries a piece of code runs (for tests on a seeded table)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection


def plans_of(run: Callable[[], Any]) -> list[tuple[str, dict[str, Any]]]:
    """Run ``run`` and return (sql, plan) for each SELECT or UPDATE it sent: ``EXPLAIN (FORMAT JSON)`` of the
    same statement with the same parameters, asked right before the statement itself runs."""
    plans: list[tuple[str, dict[str, Any]]] = []

    def explain(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if not many and sql.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE")):
            raw = context["cursor"].cursor
            raw.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plans.append((sql, raw.fetchone()[0][0]["Plan"]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        run()
    return plans


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, depth first (subplans and init plans included)."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def seq_scanned(plan: dict[str, Any]) -> set[str]:
    """Tables the plan reads with a sequential scan."""
    return {node["Relation Name"] for node in nodes(plan) if node["Node Type"] == "Seq Scan"}


def indexes_used(plan: dict[str, Any]) -> set[str]:
    """Indexes the plan reads (index, index-only and bitmap index scans)."""
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


# A year of data at 1/25 scale, by the bench's own generator: big enough that a
# query without its index would scan (and the planner, after ANALYZE, says so).
SEEDED_TABLES = ("auth_user", "dm_conversation", "dm_membership", "dm_message", "notifications_notification")


def seed_year() -> Any:
    """Fill the tables with bench.yeardata's shape at 1/25 (committed; see ``unseed``) and ANALYZE them."""
    from bench.yeardata import Shape, statements

    shape = Shape(
        users=400,
        conversations=400,
        messages=40_000,
        room_members=80,
        room_messages=8000,
        dm_messages=2000,
        notifications=40_000,
        heavy_notifications=4000,
        heavy_unread=400,
        heavy_conversations=200,
    )
    with connection.cursor() as cursor:
        for _, sql in statements(shape, seed=19):
            cursor.execute(sql)
        for table in SEEDED_TABLES:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cursor.execute(f"ANALYZE {table}")
    return shape


def unseed() -> None:
    """Empty the seeded tables again (and whatever refers to them)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(SEEDED_TABLES)} RESTART IDENTITY CASCADE")
