"""Front matter YAML read with bounded work: PyYAML's safe loader with limits on what one file can make it do.

* Nesting deeper than `MAX_DEPTH` levels is refused (PyYAML composes recursively: past about 1,000 levels it
  would raise RecursionError).
* Aliases are allowed (`<<: *defaults` is common), but the document they expand to is limited to `MAX_NODES`
  nodes and `MAX_DEPTH` levels, and an alias inside the node it names is refused: an alias bomb (`a: &a [x, x]`,
  `b: &b [*a, *a]`, ... `title: *i`) is a few hundred bytes that expand to billions of values, which every
  consumer of the value (`str()`, the clean-up) would walk.
* A scalar whose type YAML resolves but whose value is impossible (`2023-13-45`, `2023-02-29T10:00:00Z`,
  `0000-00-00`, a zone of +99:00, `!!int "abc"`) is kept as the text it was written as, instead of failing the
  whole document: the date fields then report it (recommender.ingest.fields) and the article is kept.
"""

from __future__ import annotations

import yaml

from .budget import check_time
from .guard import IngestError
from .text import no_lone_surrogates

MAX_DEPTH = 64
MAX_NODES = 100_000
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader with the limits above; `warnings` lists the values kept as text (other than dates)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0
        self.warnings: list[str] = []

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise IngestError(f"front matter nested deeper than {MAX_DEPTH} levels (line {mark.line + 2})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            check_expansion(node)
        return node

    def construct_object(self, node, deep=False):
        check_time()
        if not isinstance(node, yaml.ScalarNode) or node in self.constructed_objects:
            return super().construct_object(node, deep)
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            self.recursive_objects.pop(node, None)
            self.constructed_objects[node] = node.value
            if node.tag != _TIMESTAMP:  # a bad date is reported by the date field that holds it
                kind = node.tag.rsplit(":", 1)[-1]
                self.warnings.append(f"front matter line {node.start_mark.line + 2}: {node.value[:80]!r} is not "
                                     f"a valid {kind} ({exc}); kept as text")
            return node.value


def load_front_matter(text: str) -> tuple[object, list[str]]:
    """(the YAML document, warnings); raise IngestError or yaml.YAMLError for what cannot be read."""
    loader = BoundedLoader(text)
    try:
        return no_lone_surrogates(loader.get_single_data()), loader.warnings
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(root: yaml.Node) -> None:
    """Raise IngestError when the document, with every alias expanded, is larger than MAX_NODES nodes or deeper
    than MAX_DEPTH levels, or holds an alias inside the node it names. Linear in the composed nodes."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            if size[key] > MAX_NODES or depth[key] > MAX_DEPTH:
                raise IngestError(f"front matter aliases expand to more than {MAX_NODES:,} values or "
                                  f"{MAX_DEPTH} levels (line {node.start_mark.line + 2}); not read")
            continue
        if key in size:
            continue
        if key in on_path:
            raise IngestError(f"front matter holds an alias inside the node it names (line "
                              f"{node.start_mark.line + 2}); not read")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)
