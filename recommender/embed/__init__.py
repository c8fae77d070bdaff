"""Articles to vectors: the text each article is embedded from (title, excerpt, body chunks), the embedding
backends (OpenVINO and PyTorch, the packaged all-MiniLM-L6-v2, no downloads), the tokenizer, and the vector cache."""
