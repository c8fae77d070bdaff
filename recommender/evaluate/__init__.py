"""How good the links are: metrics against curated lists, lexical and random baselines, cross-validation and
training of the learned ranking, reports, and the editors' check."""
