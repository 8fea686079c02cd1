"""Property test: replicas editing concurrently converge, and validation never crashes.

Three replicas apply random element, attribute, move and text operations
through the public API; their updates travel through a network that delivers
in random order and with duplicates. After everything is delivered, every
replica must show the same `to_json()` (and so must a replica loaded from its
encoded state), `validate()` must list violations
(concurrent edits may legitimately break the schema: two moves of one element
leave two copies with one `$id`) without raising, and a document with no
violation must also pass the exported JSON Schema.
"""

from __future__ import annotations

import os
import random

import jsonschema
from _meshdoc_schemas import article_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshdoc import Element, MeshdocError, MeshDocument

SCHEMA = article_schema()
JSON_SCHEMA = SCHEMA.to_json()
REPLICAS = 3
KNOWN_RULES = {
    "unknown-tag",
    "unknown-attribute",
    "type",
    "enum",
    "required",
    "child-not-allowed",
    "child-order",
    "text-not-allowed",
    "unknown-mark",
    "mark-attribute",
    "missing-id",
    "duplicate-id",
}
OPS = [
    "append",
    "insert_at",
    "set_attr",
    "remove_attr",
    "delete",
    "move",
    "text_insert",
    "text_delete",
    "text_format",
    "json",
]
WORDS = st.text(alphabet="ab é😀", min_size=1, max_size=4)
operation = st.tuples(
    st.integers(0, REPLICAS - 1),
    st.sampled_from(OPS),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    WORDS,
)


def _elements(doc: MeshDocument) -> list[Element]:
    return [doc.root, *doc.find()]


VALUES = {
    "title": "t",
    "align": "center",
    "level": 2,
    "name": "n",
    "collapsed": True,
    "weight": 1.5,
}
ATTRS = {"section": {"name": "s"}, "heading": {"level": 1}}


def _apply(doc: MeshDocument, op: str, a: int, b: int, word: str) -> None:
    """One operation, mostly valid for the schema; one in seven deliberately not."""
    elements = _elements(doc)
    target = elements[a % len(elements)]
    other = elements[b % len(elements)]
    rich = [e for e in elements if e.element_type is not None and e.element_type.rich_text]
    allowed = target.element_type.child_tags if target.element_type else []
    wild = b % 7 == 0
    if op == "append":
        tags = ["paragraph", "table"] if wild or not allowed else allowed
        tag = tags[b % len(tags)]
        target.append_child(tag, dict(ATTRS.get(tag, {})))
    elif op == "insert_at":
        tags = ["heading", "paragraph"] if wild or not allowed else allowed
        tag = tags[b % len(tags)]
        index = b % (len(target.get_children()) + 1)
        target.insert_child_at(index, tag, dict(ATTRS.get(tag, {})))
    elif op == "set_attr":
        names = list(target.element_type.attributes) if target.element_type else []
        name = "align" if wild or not names else names[b % len(names)]
        target.set_attribute(name, word if name in ("name", "title") and b % 2 else VALUES[name])
    elif op == "remove_attr":
        target.remove_attribute(["align", "collapsed", "weight", "title"][b % 4])
    elif op == "delete":
        (other if target.is_root else target).delete()
    elif op == "move":
        target.move(other, None)
    elif rich and op.startswith("text"):
        text = rich[a % len(rich)].text
        size = len(text)
        if op == "text_insert" or not size:
            text.insert(b % (size + 1), word, {"bold": {}} if b % 3 == 0 else None)
        elif op == "text_delete":
            start = b % size
            text.delete(start, min(len(word), size - start))
        else:
            start = b % size
            mark = [{"bold": {}}, {"bold": None}, {"link": {"href": word}}][b % 3]
            text.format(start, min(len(word), size - start), mark)
    elif op == "json":
        doc.root.append_json(
            {
                "paragraph": {
                    "children": [
                        {"$text": [{"insert": word, "marks": [{"italic": {}}]}]},
                        {"hardBreak": {}},
                    ]
                }
            }
        )


def replay(
    replicas: list[MeshDocument],
    ops: list[tuple[int, str, int, int, str]],
    rng: random.Random,
    seen: list[list[bytes]] | None = None,
) -> None:
    """Apply `ops` to `replicas`; their updates travel through a network that delivers them
    in random order (`rng`) with duplicates, until everything is delivered.

    A refused operation must have changed nothing. `seen`, if given, gets every update
    each replica took in, in order (its own included).
    """
    network: list[tuple[int, bytes]] = []

    def broadcaster(sender: int):
        def send(event):
            if event.origin == "net":
                return
            if seen is not None:
                seen[sender].append(event.update)
            for target in range(len(replicas)):
                if target != sender:
                    network.append((target, event.update))

        return send

    for i, replica in enumerate(replicas):
        replica.observe(broadcaster(i))

    def deliver(count: int) -> None:
        for _ in range(min(count, len(network))):
            index = rng.randrange(len(network))
            target, update = network[index]
            if rng.random() < 0.8:  # otherwise leave it queued: a duplicate later
                network.pop(index)
            if seen is not None:
                seen[target].append(update)
            replicas[target].apply_update(update, origin="net")

    for replica_index, op, a, b, word in ops:
        replica = replicas[replica_index]
        before = replica.get_state()
        try:
            _apply(replica, op, a, b, word)
        except MeshdocError:  # refused by the schema or the tree: must have changed nothing
            assert replica.get_state() == before
        deliver(rng.randrange(3))
    while network:
        deliver(len(network))


@settings(
    max_examples=int(os.environ.get("MESHDOC_CONVERGENCE_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=st.lists(operation, max_size=25), seed=st.integers(0, 2**32 - 1))
def test_replicas_converge_and_validation_reports(ops, seed):
    replicas = [MeshDocument(SCHEMA, origin=f"r{i}") for i in range(REPLICAS)]
    replay(replicas, ops, random.Random(seed))

    first = replicas[0].to_json()
    for replica in replicas[1:]:
        assert replica.to_json() == first
    for replica in replicas:  # what each holds in memory is what it encodes
        assert MeshDocument.from_update(SCHEMA, replica.get_update()).to_json() == first
    violations = replicas[0].validate()
    assert {v.rule for v in violations} <= KNOWN_RULES
    for replica in replicas[1:]:
        assert replica.validate() == violations
    if not violations:
        jsonschema.validate(first, JSON_SCHEMA)
