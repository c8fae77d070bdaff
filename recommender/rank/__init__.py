"""Ranking related articles: candidate pools and signals, the default (fixed-weight) and learned rankers, the
link policy, editors' overrides, link rules, explanations, the precomputed query data and stored lists, and
Index, the query API (`related`, `search`)."""
