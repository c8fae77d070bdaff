"""Small helpers every stage may use: atomic writes, timestamps, progress bars, text rendering, blocks of
rows, the SQLite caches' plumbing. Imports nothing else from recommender."""
