"""Checks shared by the Kafka client tests: what was produced must come back."""

from collections import defaultdict


def check_read_back(records, produced):
    """records: [(partition, offset, key, value)]; produced: [(key, value)] in send order."""
    assert len(records) == len(produced), f"read {len(records)} records, produced {len(produced)}"
    by_partition = defaultdict(list)
    for p, o, _, _ in records:
        by_partition[p].append(o)
    for p, offsets in by_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), f"offsets of partition {p} are dense from 0"
    read_order = defaultdict(list)
    key_partition = {}
    for p, _, k, v in sorted(records, key=lambda r: (r[0], r[1])):
        read_order[k].append(v)
        assert key_partition.setdefault(k, p) == p, f"key {k} spread over partitions"
    produced_order = defaultdict(list)
    for k, v in produced:
        produced_order[k].append(v)
    assert read_order == produced_order, "per-key order differs"


def check_exactly_once(records, acknowledged):
    values = [v for _, _, _, v in records]
    seen = set()
    for v in values:
        assert v not in seen, f"record {v} appears twice"
        seen.add(v)
    missing = acknowledged - seen
    assert not missing, f"{len(missing)} acknowledged records missing, e.g. {sorted(missing)[:5]}"
