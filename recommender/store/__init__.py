"""The index folder: manifest (model, dimension, count, checksums), article metadata (SQLite), the vector
index (FAISS), the lexical index, the lock, and the catalog of indexed articles."""
